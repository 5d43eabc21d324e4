package balance_test

import (
	"errors"
	"fmt"

	"github.com/canaryd/canaryd/internal/balance"
)

// The proxy's use: one Pool per service for the life of the process, a Set
// per build in every routing table, and Pick/Begin/End per attempt.
func Example() {
	pool := balance.NewPool(balance.PoolOptions{Passive: balance.Passive{MaxFails: 2}})

	// Rebuild of the routing table (config load, reload, store change).
	rebuild := func(addrs ...string) *balance.Set {
		eps := make([]*balance.Endpoint, len(addrs))
		for i, a := range addrs {
			eps[i] = pool.Get(a, 1) // same *Endpoint for the same address
		}
		set, err := balance.NewSet(balance.RoundRobin, eps)
		if err != nil {
			panic(err)
		}
		pool.Retain(addrs) // forget endpoints no table uses any more
		return set
	}
	set := rebuild("10.0.0.1:8080", "10.0.0.2:8080")

	// A request: the first attempt, then a retry on another endpoint.
	send := func(ep *balance.Endpoint) error {
		if ep.Addr() == "10.0.0.1:8080" { // this replica is down
			return errors.New("connection refused")
		}
		return nil
	}
	request := func() {
		var last *balance.Endpoint
		for attempt := 0; attempt < 2; attempt++ {
			ep, fallback := set.Pick(last)
			if ep == nil {
				break
			}
			ep.Begin()
			err := send(ep)
			ep.End(err == nil)
			fmt.Printf("attempt %d: %s fallback=%v err=%v\n", attempt, ep.Addr(), fallback, err)
			if err == nil {
				break
			}
			last = ep
		}
	}
	request()
	request() // the second failure in a row ejects 10.0.0.1
	request()

	// The next table keeps the endpoint state.
	set = rebuild("10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080")
	fmt.Println(set.Status())
	// Output:
	// attempt 0: 10.0.0.1:8080 fallback=false err=connection refused
	// attempt 1: 10.0.0.2:8080 fallback=false err=<nil>
	// attempt 0: 10.0.0.1:8080 fallback=false err=connection refused
	// attempt 1: 10.0.0.2:8080 fallback=false err=<nil>
	// attempt 0: 10.0.0.2:8080 fallback=false err=<nil>
	// 2 of 3 endpoints available (0 failing health checks, 1 ejected after failures)
}
