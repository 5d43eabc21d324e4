package demo

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Population is a set of synthetic users who each make a request every
// Think on average (exponential gaps), until the context ends.
type Population struct {
	Users  int
	Think  time.Duration
	Target string // base URL of the gateway
	client *http.Client
}

// Run drives the users until ctx ends. It never makes more than Users
// requests at once.
func (p *Population) Run(ctx context.Context) {
	p.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: p.Users}}
	var wg sync.WaitGroup
	for u := 0; u < p.Users; u++ {
		wg.Add(1)
		go func(id string, seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 7))
			for {
				gap := time.Duration(rng.ExpFloat64() * float64(p.Think))
				select {
				case <-ctx.Done():
					return
				case <-time.After(gap):
				}
				p.request(ctx, id)
			}
		}(fmt.Sprintf("demo-user-%04d", u), uint64(u))
	}
	wg.Wait()
	p.client.CloseIdleConnections()
}

func (p *Population) request(ctx context.Context, user string) {
	req, err := http.NewRequestWithContext(ctx, "GET", p.Target+"/api/items", nil)
	if err != nil {
		return
	}
	req.Header.Set("X-User-ID", user)
	resp, err := p.client.Do(req)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}
