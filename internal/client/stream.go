package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/event"
)

// StreamQuery selects the events StreamEvents delivers.
type StreamQuery struct {
	Service, Build string
	Types          []string
	// AfterID starts after this event id (e.g. the last one a listing
	// showed); 0 starts with the next event committed.
	AfterID int64
}

// StreamEvents calls fn with every new event matching q, in order, until
// ctx ends (then it returns ctx.Err()) or fn returns an error (returned
// as is). A dropped connection is re-opened after a pause of up to
// reconnect, resuming after the last event delivered (Last-Event-ID), so
// fn sees each event once; so is one answered 5xx (a server restarting).
// A 4xx answer (*Error) ends it.
// reconnect <= 0 means 2 s.
func (c *Client) StreamEvents(ctx context.Context, q StreamQuery, reconnect time.Duration, fn func(event.Event) error) error {
	if reconnect <= 0 {
		reconnect = 2 * time.Second
	}
	last := q.AfterID
	for {
		err := c.streamOnce(ctx, q, &last, fn)
		var herr *Error
		var ferr fnError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &ferr):
			return ferr.err
		case errors.As(err, &herr) && herr.Status < 500:
			return err // 401, 403, 400: retrying cannot help
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(reconnect):
		}
	}
}

// fnError marks an error returned by the caller's fn.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

func (c *Client) streamOnce(ctx context.Context, q StreamQuery, last *int64, fn func(event.Event) error) error {
	v := url.Values{}
	if q.Service != "" {
		v.Set("service", q.Service)
	}
	if q.Build != "" {
		v.Set("build", q.Build)
	}
	for _, t := range q.Types {
		v.Add("type", t)
	}
	req, err := c.newRequest(ctx, "GET", "/api/v1/events/stream", v, nil, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(*last, 10))
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b := make([]byte, 4096)
		n, _ := resp.Body.Read(b)
		return decodeError(resp.StatusCode, b[:n])
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data strings.Builder
	var id int64
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				// An id alone is where the server started: resume there.
				if id > *last {
					*last = id
				}
				continue
			}
			var ev event.Event
			if err := json.Unmarshal([]byte(data.String()), &ev); err != nil {
				return fmt.Errorf("event stream: bad event: %w", err)
			}
			data.Reset()
			if ev.ID <= *last {
				continue // already delivered before a reconnect
			}
			*last = ev.ID
			if err := fn(ev); err != nil {
				return fnError{err}
			}
		case strings.HasPrefix(line, ":"):
			// comment: keep-alive
		case strings.HasPrefix(line, "id:"):
			id, _ = strconv.ParseInt(strings.TrimSpace(line[3:]), 10, 64)
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	return errors.New("event stream: the server closed it")
}
