package source

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Prometheus runs an instant PromQL query through Prometheus' HTTP API
// (GET /api/v1/query). The query must yield one number: a scalar or a
// vector of exactly one series (aggregate with sum, avg or max); an empty
// vector or NaN is ErrNoData.
type Prometheus struct {
	// Address is Prometheus' base URL, e.g. http://127.0.0.1:9090.
	Address string
	// Query is PromQL with the placeholders of Vars.
	Query string
	// Headers are sent with every request (e.g. Authorization).
	Headers map[string]string
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
}

// Value runs the query for v.
func (p *Prometheus) Value(ctx context.Context, v Vars) (float64, error) {
	q := v.Expand(p.Query)
	u := strings.TrimRight(p.Address, "/") + "/api/v1/query?" + url.Values{"query": {q}}.Encode()
	b, err := get(ctx, p.Client, u, p.Headers)
	if err != nil {
		return 0, fmt.Errorf("prometheus query %q: %w", q, err)
	}
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return 0, fmt.Errorf("prometheus query %q: answer is not the query API's JSON: %w", q, err)
	}
	if resp.Status != "success" {
		return 0, fmt.Errorf("prometheus query %q: %s", q, resp.Error)
	}
	var sample []any
	switch resp.Data.ResultType {
	case "scalar":
		if err := json.Unmarshal(resp.Data.Result, &sample); err != nil {
			return 0, fmt.Errorf("prometheus query %q: bad scalar: %w", q, err)
		}
	case "vector":
		var vec []struct {
			Value []any `json:"value"`
		}
		if err := json.Unmarshal(resp.Data.Result, &vec); err != nil {
			return 0, fmt.Errorf("prometheus query %q: bad vector: %w", q, err)
		}
		switch len(vec) {
		case 0:
			return 0, fmt.Errorf("prometheus query %q: empty result: %w", q, ErrNoData)
		case 1:
			sample = vec[0].Value
		default:
			return 0, fmt.Errorf("prometheus query %q: %d series; aggregate them to one (sum, avg, max)", q, len(vec))
		}
	default:
		return 0, fmt.Errorf("prometheus query %q: result type %q; want a scalar or an instant vector", q, resp.Data.ResultType)
	}
	if len(sample) != 2 {
		return 0, fmt.Errorf("prometheus query %q: sample %v is not [time, value]", q, sample)
	}
	s, ok := sample[1].(string)
	if !ok {
		return 0, fmt.Errorf("prometheus query %q: value %v is not a string", q, sample[1])
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("prometheus query %q: value %q is not a number", q, s)
	}
	if math.IsNaN(x) {
		return 0, fmt.Errorf("prometheus query %q: NaN: %w", q, ErrNoData)
	}
	return x, nil
}
