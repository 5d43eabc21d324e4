package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
)

// crashChildEnv, when set, makes TestCrashChild the writer that
// TestCrashSafety kills; its value is the database path.
const crashChildEnv = "CANARYD_SQLITE_CRASH_CHILD"

// TestCrashChild is not a test on its own: run by TestCrashSafety in a
// child process, it writes changes (state + event, one transaction each)
// until it is killed, or for at most 20 s.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		return
	}
	ctx := context.Background()
	s, err := Open(ctx, path, Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		err := s.Update(ctx, func(tx store.Tx) error {
			sv, err := tx.GetService(ctx, "api")
			if err != nil {
				return err
			}
			sv.WindowOffset++
			if _, err := tx.PutService(ctx, sv); err != nil {
				return err
			}
			_, err = tx.AppendEvent(ctx, event.Event{Service: "api", Type: event.TrafficChanged, Reason: fmt.Sprint(sv.WindowOffset)})
			return err
		})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		if i == 50 {
			fmt.Println("ready")
		}
	}
	os.Exit(0)
}

// TestCrashSafety kills a process in the middle of a burst of changes
// with SIGKILL and checks that the file reopens with state and event log
// in agreement: every committed change has its event, nothing half-written.
func TestCrashSafety(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "crash.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx store.Tx) error {
		_, err := tx.PutService(ctx, store.Service{Name: "api"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	ready := false
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "error") {
			t.Fatalf("child: %s", lines.Text())
		}
		if lines.Text() == "ready" {
			ready = true
			break
		}
	}
	if !ready {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("child never got ready")
	}
	time.Sleep(20 * time.Millisecond) // let it get well into a transaction
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer s.Close()
	var check string
	if err := s.w.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	err = s.View(ctx, func(r store.Reader) error {
		sv, err := r.GetService(ctx, "api")
		if err != nil {
			return err
		}
		n := 0
		var after int64
		for {
			evs, err := r.ListEvents(ctx, store.EventQuery{Service: "api", AfterID: after, Limit: store.MaxPageSize})
			if err != nil {
				return err
			}
			if len(evs) == 0 {
				break
			}
			for _, ev := range evs {
				n++
				if ev.Reason != fmt.Sprint(n) {
					t.Errorf("event %d says change %s, want %d", ev.ID, ev.Reason, n)
				}
			}
			after = evs[len(evs)-1].ID
		}
		if sv.WindowOffset < 50 || sv.WindowOffset != n || sv.Revision != int64(n)+1 {
			t.Errorf("after kill -9: service offset %d revision %d, %d events; want offset = events >= 50, revision = events+1", sv.WindowOffset, sv.Revision, n)
		}
		t.Logf("%d changes committed before the kill, all with their event", n)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
