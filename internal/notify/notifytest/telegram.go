package notifytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
)

// Telegram implements the Bot API contract for sendMessage: POST
// /bot<token>/sendMessage with a JSON body; the answer is {"ok":true,
// "result":Message} or {"ok":false,"error_code":N,"description":...},
// 401 for a wrong token, 404 for an unknown method, 400 "Bad Request: ..."
// for a missing chat_id or text, text over 4096 characters, or HTML that
// Telegram's parser rejects (a bare <, > or &, an unknown entity or tag,
// unbalanced tags), and 429 with parameters.retry_after (see RateLimit).
type Telegram struct {
	*httpPeer
	token string
	fails failQueue

	mu   sync.Mutex
	msgs []TelegramMessage
}

// TelegramMessage is one accepted sendMessage call.
type TelegramMessage struct {
	ChatID    string
	ThreadID  int64
	ParseMode string
	// Text is the text as sent (HTML markup included); Plain is what a
	// user sees after Telegram parsed the markup and entities.
	Text  string
	Plain string
}

// NewTelegram starts a Bot API peer that accepts token.
func NewTelegram(t testing.TB, token string) *Telegram {
	tg := &Telegram{token: token}
	tg.httpPeer = startHTTP(t, http.HandlerFunc(tg.serve))
	return tg
}

// BaseURL is what to configure as the Bot API base URL.
func (tg *Telegram) BaseURL() string { return tg.URL() }

// Messages returns the accepted messages so far.
func (tg *Telegram) Messages() []TelegramMessage {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]TelegramMessage(nil), tg.msgs...)
}

// RateLimit makes the next n calls answer 429 with
// parameters.retry_after = seconds.
func (tg *Telegram) RateLimit(n, seconds int) {
	tg.fails.push(n, failure{status: http.StatusTooManyRequests, retryAfter: strconv.Itoa(seconds),
		body: "Too Many Requests: retry after " + strconv.Itoa(seconds)})
}

// Fail makes the next n calls answer with error_code status and the given
// description.
func (tg *Telegram) Fail(n, status int, description string) {
	tg.fails.push(n, failure{status: status, body: description})
}

type tgParams struct {
	RetryAfter int `json:"retry_after,omitempty"`
}

func (tg *Telegram) serve(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, v map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	fail := func(code int, desc string, p *tgParams) {
		v := map[string]any{"ok": false, "error_code": code, "description": desc}
		if p != nil {
			v["parameters"] = p
		}
		reply(code, v)
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	token, method, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		fail(http.StatusNotFound, "Not Found", nil)
		return
	}
	if token != tg.token {
		fail(http.StatusUnauthorized, "Unauthorized", nil)
		return
	}
	if method != "sendMessage" {
		fail(http.StatusNotFound, "Not Found: method not found", nil)
		return
	}
	var req struct {
		ChatID          json.RawMessage `json:"chat_id"`
		MessageThreadID int64           `json:"message_thread_id"`
		Text            string          `json:"text"`
		ParseMode       string          `json:"parse_mode"`
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(raw, &req); err != nil {
		fail(http.StatusBadRequest, "Bad Request: invalid JSON", nil)
		return
	}
	chat := strings.Trim(string(req.ChatID), `"`)
	if chat == "" || chat == "null" {
		fail(http.StatusBadRequest, "Bad Request: chat_id is empty", nil)
		return
	}
	if req.Text == "" {
		fail(http.StatusBadRequest, "Bad Request: message text is empty", nil)
		return
	}
	plain := req.Text
	if strings.EqualFold(req.ParseMode, "HTML") {
		p, err := ParseTelegramHTML(req.Text)
		if err != nil {
			fail(http.StatusBadRequest, "Bad Request: can't parse entities: "+err.Error(), nil)
			return
		}
		plain = p
	}
	if len(utf16.Encode([]rune(plain))) > 4096 {
		fail(http.StatusBadRequest, "Bad Request: message is too long", nil)
		return
	}
	if f, ok := tg.fails.pop(); ok {
		var p *tgParams
		if f.retryAfter != "" {
			n, _ := strconv.Atoi(f.retryAfter)
			p = &tgParams{RetryAfter: n}
		}
		fail(f.status, f.body, p)
		return
	}
	tg.mu.Lock()
	tg.msgs = append(tg.msgs, TelegramMessage{ChatID: chat, ThreadID: req.MessageThreadID, ParseMode: req.ParseMode, Text: req.Text, Plain: plain})
	id := len(tg.msgs)
	tg.mu.Unlock()
	result := map[string]any{"message_id": id, "date": time.Now().Unix(), "chat": map[string]any{"id": chat}, "text": plain}
	if req.MessageThreadID != 0 {
		result["message_thread_id"] = req.MessageThreadID
		result["is_topic_message"] = true
	}
	reply(http.StatusOK, map[string]any{"ok": true, "result": result})
}

var tgTags = map[string]bool{
	"b": true, "strong": true, "i": true, "em": true, "u": true, "ins": true,
	"s": true, "strike": true, "del": true, "a": true, "code": true, "pre": true,
	"tg-spoiler": true, "span": true, "blockquote": true, "tg-emoji": true,
}

// ParseTelegramHTML checks text the way Telegram's HTML parse mode does
// and returns what the user sees: the supported tags must be balanced, and
// every <, > and & outside a tag must be written as &lt;, &gt;, &amp; (or
// &quot; or a numeric entity).
func ParseTelegramHTML(text string) (string, error) {
	var out strings.Builder
	var stack []string
	for i := 0; i < len(text); {
		switch c := text[i]; c {
		case '<':
			end := strings.IndexByte(text[i:], '>')
			if end < 0 {
				return "", fmt.Errorf("unclosed start tag at byte offset %d", i)
			}
			tag := text[i+1 : i+end]
			i += end + 1
			if name, ok := strings.CutPrefix(tag, "/"); ok {
				name = strings.ToLower(strings.TrimSpace(name))
				if len(stack) == 0 || stack[len(stack)-1] != name {
					return "", fmt.Errorf("unexpected end tag %q", name)
				}
				stack = stack[:len(stack)-1]
				continue
			}
			name, attrs, _ := strings.Cut(tag, " ")
			name = strings.ToLower(name)
			if !tgTags[name] {
				return "", fmt.Errorf("unsupported start tag %q", name)
			}
			if strings.ContainsAny(attrs, "<>") {
				return "", errors.New("bad attribute")
			}
			if _, err := unescape(attrs); err != nil {
				return "", err
			}
			stack = append(stack, name)
		case '>':
			return "", fmt.Errorf("character '>' at byte offset %d is reserved and must be escaped", i)
		case '&':
			end := strings.IndexByte(text[i:], ';')
			if end < 0 || end > 10 {
				return "", fmt.Errorf("character '&' at byte offset %d is reserved and must be escaped", i)
			}
			s, err := unescape(text[i : i+end+1])
			if err != nil {
				return "", err
			}
			out.WriteString(s)
			i += end + 1
		default:
			out.WriteByte(c)
			i++
		}
	}
	if len(stack) > 0 {
		return "", fmt.Errorf("can't find end tag corresponding to start tag %q", stack[len(stack)-1])
	}
	return out.String(), nil
}

// unescape resolves the entities Telegram supports and rejects others.
func unescape(s string) (string, error) {
	var out strings.Builder
	for {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			out.WriteString(s)
			return out.String(), nil
		}
		out.WriteString(s[:i])
		end := strings.IndexByte(s[i:], ';')
		if end < 0 {
			return "", errors.New("character '&' is reserved and must be escaped")
		}
		ent := s[i+1 : i+end]
		switch {
		case ent == "lt":
			out.WriteByte('<')
		case ent == "gt":
			out.WriteByte('>')
		case ent == "amp":
			out.WriteByte('&')
		case ent == "quot":
			out.WriteByte('"')
		case strings.HasPrefix(ent, "#x"):
			n, err := strconv.ParseUint(ent[2:], 16, 32)
			if err != nil {
				return "", fmt.Errorf("unsupported entity %q", ent)
			}
			out.WriteRune(rune(n))
		case strings.HasPrefix(ent, "#"):
			n, err := strconv.ParseUint(ent[1:], 10, 32)
			if err != nil {
				return "", fmt.Errorf("unsupported entity %q", ent)
			}
			out.WriteRune(rune(n))
		default:
			return "", fmt.Errorf("unsupported entity %q", ent)
		}
		s = s[i+end+1:]
	}
}
