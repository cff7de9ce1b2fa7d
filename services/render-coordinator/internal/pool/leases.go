package pool

import (
	"strconv"
	"time"
)

// lease is one slot granted to one batch of one gateway.
type lease struct {
	id      string
	epoch   uint64
	node    *node
	slot    int
	batch   string
	gw      *GatewaySession // nil while its gateway is reconnecting (or unknown after a restart)
	expires time.Time       // revoked if not released by then
	orphan  time.Time       // when gw is nil: freed at this time unless a gateway claims it
}

// leaseTable indexes leases by id.
type leaseTable struct {
	byID  map[string]*lease
	nodes *registry // told when a slot frees
}

func newLeaseTable(nodes *registry) *leaseTable {
	return &leaseTable{byID: map[string]*lease{}, nodes: nodes}
}

func leaseID(epoch uint64) string { return "L" + strconv.FormatUint(epoch, 36) }

func (t *leaseTable) get(id string) *lease { return t.byID[id] }

// put records l in the table and occupies its slot.
func (t *leaseTable) put(l *lease) {
	t.byID[l.id] = l
	l.node.leases[l.slot] = l
	l.node.free--
	if l.epoch > l.node.slotEpoch[l.slot] {
		l.node.slotEpoch[l.slot] = l.epoch
	}
}

// drop removes l and frees its slot.
func (t *leaseTable) drop(l *lease) {
	delete(t.byID, l.id)
	if l.node.leases[l.slot] == l {
		l.node.leases[l.slot] = nil
		l.node.free++
		t.nodes.freed(l.node)
	}
}
