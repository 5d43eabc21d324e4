package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
)

// stream serves GET /api/v1/events/stream as server-sent events. It
// subscribes to the store's change feed before it reads anything, so no
// event committed after the stream opened is missed; after each change it
// reads the events after the last one sent (ListEvents with AfterID),
// which also covers a resync. A client that reconnects with Last-Event-ID
// gets what it missed, in order. It ends when the client goes, the store
// closes or Options.Done is closed.
func (a *api) stream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	eq, err := eventQuery(q)
	if err != nil {
		a.fail(w, route{op: "streamEvents"}, err)
		return
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id < 0 {
			a.fail(w, route{op: "streamEvents"}, badRequest("Last-Event-ID", strconv.Quote(v)+" is not an event id"))
			return
		}
		eq.AfterID = id
	}
	resume := eq.AfterID > 0 || q.Has("after_id") || r.Header.Get("Last-Event-ID") != ""

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if a.done != nil {
		go func() { // ends with the stream at the latest
			select {
			case <-a.done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	changes := a.store.Subscribe(ctx)
	if !resume {
		// Start with the next event: the newest one now is the origin.
		err := a.store.View(ctx, func(rd store.Reader) error {
			evs, err := rd.ListEvents(ctx, store.EventQuery{Desc: true, Limit: 1})
			if len(evs) > 0 {
				eq.AfterID = evs[0].ID
			}
			return err
		})
		if err != nil {
			a.fail(w, route{op: "streamEvents"}, err)
			return
		}
	}

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// The id line alone tells the client where the stream starts, so a
	// reconnect resumes there even before the first event.
	if _, err := fmt.Fprintf(w, "retry: 2000\nid: %d\n\n", eq.AfterID); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}

	// send writes every matching event after eq.AfterID, a page at a time.
	send := func() error {
		for {
			page := eq
			page.Limit = store.MaxPageSize
			var evs []event.Event
			err := a.store.View(ctx, func(rd store.Reader) error {
				var err error
				evs, err = rd.ListEvents(ctx, page)
				return err
			})
			if err != nil {
				return err
			}
			for _, ev := range evs {
				data, err := json.Marshal(ev)
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, data); err != nil {
					return err
				}
				eq.AfterID = ev.ID
			}
			if err := rc.Flush(); err != nil {
				return err
			}
			if len(evs) < page.Limit {
				return nil
			}
		}
	}
	if send() != nil {
		return
	}
	tick := time.NewTicker(a.keep)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ch, ok := <-changes:
			if !ok {
				return
			}
			if ch.Kind != store.ChangeEvent && ch.Kind != store.ChangeResync {
				continue
			}
			if err := send(); err != nil {
				if ctx.Err() == nil {
					a.log.Debug("admin api: event stream ended", "err", err)
				}
				return
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}
