// Command memconns measures canaryd's resident memory with many idle
// keep-alive client connections and many open WebSockets. It starts a
// loopback backend (HTTP and WebSocket echo), runs the canaryd binary given
// in front of it, opens the connections through it and reads the gateway's
// VmRSS from /proc. Results go to docs/benchmarks.md.
//
//	go build -o bin/canaryd ./cmd/canaryd
//	go run ./bench/memconns -canaryd bin/canaryd -conns 10000 -ws 0
//	go run ./bench/memconns -canaryd bin/canaryd -conns 0 -ws 1000
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

func main() {
	bin := flag.String("canaryd", "bin/canaryd", "canaryd binary")
	nconns := flag.Int("conns", 10000, "idle keep-alive client connections")
	nws := flag.Int("ws", 1000, "open WebSockets")
	flag.Parse()
	raiseFileLimit()

	backend := startBackend()
	dir, _ := os.MkdirTemp("", "memconns-")
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "c.yaml")
	listen := freeAddr()
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`listen: %s
store: sqlite://%s/c.db
services:
  - name: app
    builds:
      - {id: "1", state: stable, endpoints: [%s]}
      - {id: "2", state: canary, traffic: 10, endpoints: [%s]}
    release: {controller: false}
`, listen, dir, backend, backend)), 0o644)
	cmd := exec.Command(*bin, "serve", "--config", cfgPath, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	waitListen(listen)
	pid := cmd.Process.Pid

	// Warm up: a few requests so pools and code are in memory.
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + listen + "/"); err == nil {
			resp.Body.Close()
		}
	}
	time.Sleep(time.Second)
	base := rss(pid)
	fmt.Printf("baseline: %.1f MiB\n", mib(base))

	if *nconns > 0 {
		measureConns(listen, pid, base, *nconns)
	}
	if *nws > 0 {
		measureWebSockets(listen, pid, base, *nws)
	}
}

func measureConns(listen string, pid int, base int64, n int) {
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", listen)
		if err != nil {
			log.Fatalf("conn %d: %v", i, err)
		}
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nX-User-ID: u%d\r\n\r\n", i)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			log.Fatalf("conn %d: %v", i, err)
		}
		resp.Body.Close()
		conns = append(conns, c)
	}
	time.Sleep(2 * time.Second)
	withConns := rss(pid)
	fmt.Printf("%d idle keep-alive connections: %.1f MiB (+%.1f KiB per connection)\n",
		n, mib(withConns), float64(withConns-base)/1024/float64(n))
	for _, c := range conns {
		c.Close()
	}
}

func measureWebSockets(listen string, pid int, base int64, n int) {
	ctx := context.Background()
	var socks []*websocket.Conn
	for i := 0; i < n; i++ {
		c, _, err := websocket.Dial(ctx, "ws://"+listen+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"X-User-Id": {fmt.Sprint("w", i)}}})
		if err != nil {
			log.Fatalf("websocket %d: %v", i, err)
		}
		if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
			log.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			log.Fatal(err)
		}
		socks = append(socks, c)
	}
	time.Sleep(2 * time.Second)
	withWS := rss(pid)
	fmt.Printf("%d open WebSockets: %.1f MiB (+%.1f KiB per WebSocket)\n",
		n, mib(withWS), float64(withWS-base)/1024/float64(n))
	for _, c := range socks {
		c.CloseNow()
	}
}

func startBackend() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			w.Write([]byte("ok"))
			return
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
			c.Write(r.Context(), typ, msg)
		}
	}))
	return ln.Addr().String()
}

func freeAddr() string {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	return ln.Addr().String()
}

func waitListen(addr string) {
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	log.Fatalf("canaryd did not listen on %s", addr)
}

// rss returns the resident set of pid in bytes.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")), "%d", &kb)
			return kb * 1024
		}
	}
	return 0
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < 65536 {
		l.Cur = min(65536, l.Max)
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
