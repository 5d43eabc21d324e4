package server

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsBackend echoes messages prefixed with its name; /events streams SSE.
func wsBackend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events" {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; ; i++ {
				if _, err := fmt.Fprintf(w, "data: %s %d\n\n", name, i); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte(name+":"), msg...)); err != nil {
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// A WebSocket through the gateway echoes; when a rollback moves its user
// off the canary it is closed with 1012, and the reconnect lands on stable.
// An event stream held by a moved user ends too.
func TestLongLivedConnectionsFollowTheirUser(t *testing.T) {
	stable, canary := wsBackend(t, "stable"), wsBackend(t, "canary")
	srv, url := start(t, twoBuilds, "sticky", addr(stable), 100, addr(canary))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hdr := http.Header{"X-User-Id": {"ws-user"}}
	wsURL := "ws" + strings.TrimPrefix(url, "http") + "/ws"
	c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "canary:hi" {
		t.Fatalf("echo = %q, %v", msg, err)
	}

	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/events", nil)
	req.Header.Set("X-User-ID", "ws-user")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if line, _ := rd.ReadString('\n'); !strings.HasPrefix(line, "data: canary") {
		t.Fatalf("first event %q", line)
	}

	if _, err := srv.Plane().Rollback(ctx, "test", "api", "moving users"); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusServiceRestart {
		t.Fatalf("read after rollback: %v, want close 1012", err)
	}
	sseEnded := make(chan error, 1)
	go func() {
		for {
			if _, err := rd.ReadString('\n'); err != nil {
				sseEnded <- err
				return
			}
		}
	}()
	select {
	case <-sseEnded:
	case <-ctx.Done():
		t.Fatal("the event stream of a moved user was not ended")
	}
	c2, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	c2.Write(ctx, websocket.MessageText, []byte("again"))
	if _, msg, err := c2.Read(ctx); err != nil || string(msg) != "stable:again" {
		t.Fatalf("after reconnect: %q, %v", msg, err)
	}
}
