// Package session keeps a render node registered with the coordinator: one
// NodeSession stream, the node's full state sent at the interval the
// coordinator asks for and whenever it changes, and a reconnect (which
// re-reports everything) when the stream breaks.
package session

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	rcv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendercoordinator/v1"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/node"
)

// Backoff between reconnects.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// Run holds the session until ctx ends.
func Run(ctx context.Context, client rcv1.RenderCoordinatorServiceClient, info *rcv1.NodeInfo, n *node.Node, log *slog.Logger) {
	backoff := minBackoff
	for ctx.Err() == nil {
		began := time.Now()
		err := once(ctx, client, info, n, log)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > 10*time.Second {
			backoff = minBackoff
		}
		log.Warn("coordinator session ended; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff)/2+1))):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func once(ctx context.Context, client rcv1.RenderCoordinatorServiceClient, info *rcv1.NodeInfo, n *node.Node, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.NodeSession(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&rcv1.NodeSessionRequest{Info: info, State: n.State()}); err != nil {
		return err
	}
	// One goroutine receives; this one sends.
	intervals := make(chan time.Duration, 1)
	recvErr := make(chan error, 1)
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			n.ApplyValid(resp)
			select {
			case intervals <- resp.GetHeartbeatWithin().AsDuration():
			default:
			}
		}
	}()
	log.Info("registered with the coordinator", "node_id", info.GetNodeId())
	interval := time.Second
	t := time.NewTimer(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-recvErr:
			return err
		case d := <-intervals:
			if d > 0 {
				interval = d
			}
			continue
		case <-t.C:
		case <-n.Changed():
		}
		// Report at half the interval so one lost report is not a miss.
		t.Reset(interval / 2)
		if err := stream.Send(&rcv1.NodeSessionRequest{State: n.State()}); err != nil {
			return err
		}
	}
}
