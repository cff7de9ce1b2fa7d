package lifecycle

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
)

// StopGrace is how long servers let in-flight calls finish after a stop
// signal before they are cut.
const StopGrace = 10 * time.Second

// ServeGRPC serves srv on lis until ctx is done, then stops gracefully,
// forcing the stop after StopGrace (a stream that never ends must not hold
// the process).
func ServeGRPC(ctx context.Context, srv *grpc.Server, lis net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(StopGrace):
		srv.Stop()
	}
	return nil
}

// ServeHTTP serves srv on lis until ctx is done, then shuts it down,
// closing remaining connections after StopGrace.
func ServeHTTP(ctx context.Context, srv *http.Server, lis net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), StopGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return srv.Close()
	}
	return nil
}
