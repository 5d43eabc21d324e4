package sqlstore

import (
	"context"
	"sync"

	"github.com/canaryd/canaryd/internal/store"
)

// maxQueue is how many undelivered changes a subscriber may have before
// they are replaced by one ChangeResync.
const maxQueue = 1024

// Feed fans committed changes out to subscribers without ever blocking the
// publisher. The zero value is not usable; call NewFeed.
type Feed struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	done   chan struct{}
	closed bool
}

type subscriber struct {
	mu    sync.Mutex
	queue []store.Change
	wake  chan struct{}
	out   chan store.Change
}

// NewFeed returns an open feed.
func NewFeed() *Feed {
	return &Feed{subs: make(map[*subscriber]struct{}), done: make(chan struct{})}
}

// Subscribe implements store.Store.Subscribe. The returned channel is
// closed when ctx ends or the feed is closed.
func (f *Feed) Subscribe(ctx context.Context) <-chan store.Change {
	s := &subscriber{wake: make(chan struct{}, 1), out: make(chan store.Change)}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		close(s.out)
		return s.out
	}
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	go f.pump(ctx, s)
	return s.out
}

func (f *Feed) pump(ctx context.Context, s *subscriber) {
	defer func() {
		f.mu.Lock()
		delete(f.subs, s)
		f.mu.Unlock()
		close(s.out)
	}()
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		s.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return
			case <-f.done:
				return
			}
		}
		for _, c := range batch {
			select {
			case s.out <- c:
			case <-ctx.Done():
				return
			case <-f.done:
				return
			}
		}
	}
}

// Publish queues changes for every subscriber. It never blocks on a
// subscriber: one that would have more than maxQueue changes waiting loses
// its backlog and gets a single ChangeResync in its place.
func (f *Feed) Publish(changes ...store.Change) {
	if len(changes) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		s.mu.Lock()
		switch {
		case len(changes) >= maxQueue:
			s.queue = append(s.queue[:0], store.Change{Kind: store.ChangeResync})
		case len(s.queue)+len(changes) > maxQueue:
			// The backlog becomes one resync; the new changes follow it.
			s.queue = append(append(s.queue[:0], store.Change{Kind: store.ChangeResync}), changes...)
		default:
			s.queue = append(s.queue, changes...)
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Close ends every subscription. It is safe to call more than once.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.done)
	}
}
