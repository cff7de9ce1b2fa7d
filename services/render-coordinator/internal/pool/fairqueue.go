package pool

import "time"

// demand is one batch waiting for slots.
type demand struct {
	gw      *GatewaySession
	batch   string
	waiting int       // slots wanted and not yet granted
	since   time.Time // when the batch started waiting (for the oldest wait)
	turn    time.Time // when its current wait for a slot began (since, or its last grant)
	trace   map[string]string
	queued  bool
}

// fairQueue serves waiting batches round-robin: each free slot goes to the
// next batch in the ring, so a 10-URL batch behind a 10,000-URL batch waits
// about one render, not the big batch's whole run.
type fairQueue struct {
	ring []*demand
	next int
}

func (q *fairQueue) len() int { return len(q.ring) }

func (q *fairQueue) add(d *demand) {
	if d.queued {
		return
	}
	d.queued = true
	q.ring = append(q.ring, d)
}

func (q *fairQueue) remove(d *demand) {
	if !d.queued {
		return
	}
	d.queued = false
	for i, x := range q.ring {
		if x == d {
			q.ring = append(q.ring[:i], q.ring[i+1:]...)
			if q.next > i {
				q.next--
			}
			break
		}
	}
	if q.next >= len(q.ring) {
		q.next = 0
	}
}

// pop returns the batch whose turn it is and moves the turn on.
func (q *fairQueue) pop() *demand {
	if len(q.ring) == 0 {
		return nil
	}
	if q.next >= len(q.ring) {
		q.next = 0
	}
	d := q.ring[q.next]
	q.next++
	return d
}

// waiting is the total of slots wanted and the oldest waiting batch's start.
func (q *fairQueue) waiting() (slots int, oldest time.Time) {
	for _, d := range q.ring {
		slots += d.waiting
		if oldest.IsZero() || d.since.Before(oldest) {
			oldest = d.since
		}
	}
	return slots, oldest
}
