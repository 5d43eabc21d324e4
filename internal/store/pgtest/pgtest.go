// Package pgtest runs a throwaway PostgreSQL server for tests, from the
// binaries of Debian's postgresql package (/usr/lib/postgresql/*/bin). The
// cluster lives in a temporary directory, listens only on a unix socket in
// that directory, runs with durability off (fsync=off) because it is thrown
// away, and is stopped by PID.
//
// A test binary shares one cluster and gives each test a fresh database:
//
//	var pg pgtest.Shared
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pg.Stop()
//		os.Exit(code)
//	}
//
//	func TestX(t *testing.T) { dsn := pg.Database(t); ... }
//
// When PostgreSQL is not installed, Database fails the test with a message
// naming the package to install: tests that need it never skip.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinEnv names an environment variable that, when set, is the directory
// holding initdb and postgres, overriding the search under /usr/lib/postgresql.
const BinEnv = "CANARYD_PG_BIN"

// ErrNotInstalled reports that no PostgreSQL server binaries were found.
var ErrNotInstalled = errors.New(`PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install the Debian package "postgresql" (apt-get install -y postgresql)`)

// unprivileged is the account initdb and postgres run as when the tests run
// as root (initdb refuses root). "nobody" exists on every Debian system.
const unprivileged = "nobody"

// Cluster is one running throwaway PostgreSQL server.
type Cluster struct {
	dir    string // temp dir: data/ and the socket
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
	stop   chan struct{} // releases the OS thread that started postgres
	seq    atomic.Int64
	log    string
}

// FindBin returns the directory with the newest installed server binaries.
func FindBin() (string, error) {
	if d := os.Getenv(BinEnv); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("%s=%q has no initdb: %w", BinEnv, d, ErrNotInstalled)
		}
		return d, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", ErrNotInstalled
	}
	version := func(p string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return v
	}
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	return filepath.Dir(matches[0]), nil
}

// credential returns who to run the server as: nil (ourselves) unless we
// are root.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(unprivileged)
	if err != nil {
		return nil, fmt.Errorf("running as root, and user %q to run postgres as is missing: %w", unprivileged, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Groups empty: setgroups drops root's supplementary groups too.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// Start initialises and starts a new cluster. Stop it with Stop.
func Start(ctx context.Context) (*Cluster, error) {
	bin, err := FindBin()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	// /tmp rather than $TMPDIR: the unprivileged user must be able to
	// reach the directory, and the socket path must stay under 108 bytes.
	base := ""
	if fi, err := os.Stat("/tmp"); err == nil && fi.IsDir() {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "canaryd-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: temp dir: %w", err)
	}
	c := &Cluster{dir: dir, port: 5432, exited: make(chan struct{}), stop: make(chan struct{}), log: filepath.Join(dir, "postgres.log")}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: chown %s: %w", dir, err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	logf, err := os.Create(c.log)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: log: %w", err)
	}
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-k", dir, "-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300",
		"-c", "shared_buffers=32MB",
		"-c", "autovacuum=off",
		"-c", "log_min_messages=warning",
	)
	c.cmd.Dir = dir
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// Pdeathsig kills the server if the test binary dies without Stop (a
	// panic, a timeout). It fires when the starting OS thread exits, so that
	// thread stays locked until Stop.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := c.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		go func() { c.cmd.Wait(); logf.Close(); close(c.exited) }()
		select {
		case <-c.stop:
		case <-c.exited:
		}
	}()
	if err := <-started; err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: start postgres: %w", err)
	}
	if err := c.waitReady(ctx, 30*time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		conn, err := pgx.Connect(ctx, c.DSN("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-c.exited:
			b, _ := os.ReadFile(c.log)
			return fmt.Errorf("pgtest: postgres exited during start-up:\n%s", b)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(c.log)
			return fmt.Errorf("pgtest: postgres not ready after %v: %w\n%s", limit, err, b)
		}
	}
}

// DSN returns a connection string for database db on the cluster.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", c.dir, c.port, db)
}

// CreateDatabase makes a new empty database and returns its DSN.
func (c *Cluster) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("test_%d", c.seq.Add(1))
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(ctx)
	q := "CREATE DATABASE " + name
	if serverMajor(conn.PgConn().ParameterStatus("server_version")) >= 15 {
		q += " STRATEGY file_copy" // faster than WAL-logging the template
	}
	if _, err := conn.Exec(ctx, q); err != nil {
		return "", fmt.Errorf("pgtest: %s: %w", q, err)
	}
	return c.DSN(name), nil
}

// Stop shuts the server down (fast shutdown, then SIGKILL after 10 s) and
// removes its directory. It is safe to call more than once.
func (c *Cluster) Stop() {
	select {
	case <-c.stop:
		return
	default:
		close(c.stop)
	}
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			c.cmd.Process.Kill()
			<-c.exited
		}
	}
	os.RemoveAll(c.dir)
}

// Shared is a cluster started on first use and shared by the tests of one
// binary. The zero value is ready; call Stop from TestMain after m.Run.
type Shared struct {
	mu  sync.Mutex
	c   *Cluster
	err error
}

// Database returns the DSN of a fresh database on the shared cluster,
// starting the cluster if needed. It fails t if PostgreSQL cannot run.
func (s *Shared) Database(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	if s.c == nil && s.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		s.c, s.err = Start(ctx)
		cancel()
	}
	c, err := s.c, s.err
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	dsn, err := c.CreateDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// Stop stops the shared cluster if it was started.
func (s *Shared) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil {
		s.c.Stop()
	}
}

// serverMajor returns the major version from a server_version such as
// "15.18 (Debian 15.18-0+deb12u1)", or 0.
func serverMajor(v string) int {
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(v)
	}
	n, _ := strconv.Atoi(v[:end])
	return n
}
