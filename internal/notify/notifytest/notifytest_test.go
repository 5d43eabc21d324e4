package notifytest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/canaryd/canaryd/internal/notify/notifytest"
)

// The peers must reject what the real services reject, or the provider
// tests that pass against them prove nothing.

func TestParseTelegramHTML(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"<b>x</b> &lt;y&gt; &amp; &quot;z&quot; &#65;&#x42;", `x <y> & "z" AB`, true},
		{`<a href="https://e.com/?a=1&amp;b=2">l</a>`, "l", true},
		{"<pre>code</pre>", "code", true},
		{"1 < 2", "", false},
		{"2 > 1", "", false},
		{"a & b", "", false},
		{"&nbsp;", "", false},
		{"<div>x</div>", "", false},
		{"<b>x", "", false},
		{"<b><i>x</b></i>", "", false},
	}
	for _, tt := range tests {
		got, err := notifytest.ParseTelegramHTML(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseTelegramHTML(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestSlackPeerContract(t *testing.T) {
	s := notifytest.NewSlack(t)
	tests := []struct {
		name, url, body string
		status          int
		answer          string
	}{
		{"ok", s.WebhookURL(), `{"text":"hi"}`, 200, "ok"},
		{"not json", s.WebhookURL(), `text=hi`, 400, "invalid_payload"},
		{"empty", s.WebhookURL(), `{}`, 400, "no_text"},
		{"header too long", s.WebhookURL(), `{"blocks":[{"type":"header","text":{"type":"plain_text","text":"` + strings.Repeat("x", 151) + `"}}]}`, 400, "invalid_blocks"},
		{"header mrkdwn", s.WebhookURL(), `{"blocks":[{"type":"header","text":{"type":"mrkdwn","text":"x"}}]}`, 400, "invalid_blocks"},
		{"unknown hook", s.URL() + "/services/x/y/z", `{"text":"hi"}`, 404, "no_service"},
	}
	for _, tt := range tests {
		resp, err := http.Post(tt.url, "application/json", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 64)
		n, _ := resp.Body.Read(b)
		resp.Body.Close()
		if resp.StatusCode != tt.status || string(b[:n]) != tt.answer {
			t.Errorf("%s: %d %q, want %d %q", tt.name, resp.StatusCode, b[:n], tt.status, tt.answer)
		}
	}
	if len(s.Requests()) != 1 {
		t.Errorf("recorded %d, want only the valid one", len(s.Requests()))
	}
}
