package lifecycle

import (
	"context"
	"sync"
)

// Group runs parts of a service side by side. The first part to fail
// cancels the group's context so the others stop too; Wait returns that
// first error.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

// NewGroup returns a group whose context ends with parent or the first failure.
func NewGroup(parent context.Context) *Group {
	ctx, cancel := context.WithCancel(parent)
	return &Group{ctx: ctx, cancel: cancel}
}

// Go runs part in its own goroutine.
func (g *Group) Go(part func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := part(g.ctx); err != nil {
			g.once.Do(func() { g.err = err })
			g.cancel()
		}
	}()
}

// Wait waits for every part and returns the first error.
func (g *Group) Wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}
