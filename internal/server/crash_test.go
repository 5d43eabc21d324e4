package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/client"
	"github.com/canaryd/canaryd/internal/event"
)

// kill -9 of a real canaryd process in the middle of a burst of changes:
// after a restart the state is consistent and the event log explains it
// exactly — replaying every event's "after" ends in the stored state, and
// every change the API acknowledged has its event.
func TestKill9DuringChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a canaryd process")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "canaryd")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/canaryd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	admin := freeAddr(t)
	cfgPath := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`listen: %s
admin:
  listen: %s
  tokens: [{name: ops, role: admin, value: crash-test-token-1}]
store: sqlite://%s/c.db
services:
  - name: api
    builds:
      - {id: "1", state: stable, endpoints: [127.0.0.1:9]}
      - {id: "2", endpoints: [127.0.0.1:9]}
    release: {controller: false}
`, freeAddr(t), admin, dir)), 0o644)
	run := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", cfgPath, "--log-level", "error")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100; i++ {
			if c, err := net.Dial("tcp", admin); err == nil {
				c.Close()
				return cmd
			}
			time.Sleep(50 * time.Millisecond)
		}
		cmd.Process.Kill()
		t.Fatal("canaryd did not start")
		return nil
	}
	ctx := context.Background()
	cl := &client.Client{BaseURL: "http://" + admin, Token: "crash-test-token-1"}

	cmd := run()
	if _, err := cl.StartCanary(ctx, "api", wire.StartCanaryRequest{Build: "2", Traffic: 1}); err != nil {
		t.Fatal(err)
	}
	var acked atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := cl.SetTraffic(ctx, "api", float64((g*37+i)%100+1), "burst"); err == nil {
					acked.Add(1)
				}
			}
		}(g)
	}
	time.Sleep(700 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	close(stop)
	wg.Wait()
	if acked.Load() < 10 {
		t.Fatalf("only %d changes acknowledged before the kill", acked.Load())
	}

	cmd = run()
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	svc, err := cl.Service(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	var events []event.Event
	for after := int64(0); ; {
		page, err := cl.Events(ctx, client.EventQuery{Service: "api", AfterID: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, page.Events...)
		if len(page.Events) == 0 {
			break
		}
		after = page.Events[len(page.Events)-1].ID
	}
	var traffic float64
	var changes int64
	for _, ev := range events {
		if ev.Type != event.TrafficChanged && ev.Type != event.CanaryStarted {
			continue
		}
		var after struct {
			Traffic float64 `json:"traffic"`
			Canary  string  `json:"canary"`
		}
		if err := json.Unmarshal(ev.After, &after); err != nil {
			t.Fatalf("event %d: %v", ev.ID, err)
		}
		traffic = after.Traffic
		if ev.Type == event.TrafficChanged {
			changes++
		}
	}
	if svc.Canary != "2" || svc.Traffic != traffic {
		t.Fatalf("stored state canary %q traffic %v; the event log ends at traffic %v", svc.Canary, svc.Traffic, traffic)
	}
	// Every acknowledged change committed with its event; at most the
	// changes in flight at the kill may have committed unacknowledged.
	if changes < acked.Load() || changes > acked.Load()+4 {
		t.Fatalf("%d traffic events for %d acknowledged changes (4 were in flight)", changes, acked.Load())
	}
	t.Logf("%d changes acknowledged before kill -9, %d events after restart", acked.Load(), changes)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// SIGHUP reloads the config of a running canaryd without failing a
// request in flight or arriving meanwhile; a bad file is refused and the
// running config stays.
func TestSIGHUPReloadUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and signals a canaryd process")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "canaryd")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/canaryd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	a, b := backend(t, "a"), backend(t, "b")
	listen := freeAddr(t)
	cfgPath := filepath.Join(dir, "c.yaml")
	write := func(endpoint string) {
		os.WriteFile(cfgPath, []byte(fmt.Sprintf(`listen: %s
store: sqlite://%s/c.db
services: [{name: api, builds: [{id: "1", state: stable, endpoints: [%s]}]}]
`, listen, dir, endpoint)), 0o644)
	}
	write(addr(a))
	cmd := exec.Command(bin, "serve", "--config", cfgPath, "--log-level", "error")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	url := "http://" + listen
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	var failures atomic.Int64
	var seenB atomic.Bool
	stop := make(chan struct{})
	wg := hammer(url, 1, 80000, 0, stop, func(status int, body string, err error) {
		if err != nil || status != 200 {
			failures.Add(1)
		}
		if strings.HasPrefix(body, "b ") {
			seenB.Store(true)
		}
	})
	time.Sleep(300 * time.Millisecond)
	os.WriteFile(cfgPath, []byte("listen: [broken"), 0o644) // refused: the running config stays
	cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	write(addr(b))
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, seenB.Load)
	close(stop)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d requests failed across two reloads", n)
	}
}
