// Package docs holds tests that keep the documentation and the packaging
// files honest: docs/configuration.md must name every config field with its
// real default, the YAML examples must load (fragments inside a minimal
// config), migrating.md must not call a canaryctl command missing that
// exists or the other way round, compose.yaml must mount
// files that exist and a config that loads, the Prometheus files must use
// metric names canaryd really exports, the Dockerfile must build what it
// says it builds, and the systemd unit must carry the keys operations.md
// relies on. Docker and systemd cannot run here, so the files are checked
// statically, and the binaries are built with the Dockerfile's own flags.
package docs

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/base64"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/canaryd/canaryd/internal/cli/canaryctl"
	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/metrics"
	"github.com/canaryd/canaryd/internal/version"
)

// repo is the repository root, seen from this package's directory.
const repo = "../.."

// versionSymbol is the variable the Dockerfile sets with -ldflags -X.
const versionSymbol = "github.com/canaryd/canaryd/internal/version.Version"

// Keep a compile-time reference to the symbol the -X flag targets: if
// internal/version.Version is renamed, this package stops compiling.
var _ = &version.Version

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return string(b)
}

func exists(rel string) bool {
	_, err := os.Stat(filepath.Join(repo, filepath.FromSlash(rel)))
	return err == nil
}

// testEnv stands in for the environment when a documented config is loaded:
// every variable is set, and the alert secret key is a valid key.
func testEnv(name string) (string, bool) {
	switch {
	case strings.Contains(name, "SECRET_KEY"):
		return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)), true
	case strings.HasSuffix(name, "_URL"):
		return "https://hooks.example.com/docs-test/" + strings.ToLower(name), true
	}
	return "docs-test-" + strings.ToLower(name), true
}

// ---------------------------------------------------------------------------
// docs/configuration.md against the loader

var (
	userType = reflect.TypeFor[config.User]()
	cidrType = reflect.TypeFor[config.CIDRs]()
	pctType  = reflect.TypeFor[config.Percent]()
	durType  = reflect.TypeFor[config.Duration]()
	timeDur  = reflect.TypeFor[time.Duration]()
)

// knownKeys makes the loader list the keys a custom unmarshaler accepts, by
// feeding it an unknown one: its error says "(known: a, b, c)". So the list
// comes from the code, not from this test.
func knownKeys(t *testing.T, doc string) []string {
	t.Helper()
	_, err := config.Parse([]byte(doc), "probe.yaml", testEnv)
	if err == nil {
		t.Fatalf("probe config with an unknown key loaded:\n%s", doc)
	}
	m := regexp.MustCompile(`known: ([a-z_, ]+)\)`).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("the loader's error does not list the known keys: %v", err)
	}
	return strings.Split(m[1], ", ")
}

func userKeys(t *testing.T) []string {
	return knownKeys(t, "listen: 127.0.0.1:8080\nservices:\n  - name: api\n    user: {no_such_key: x}\n")
}

// configPaths lists every field path of the config file, e.g.
// "services[].builds[].endpoints[].weight", by walking the config structs'
// yaml tags. User has no tags (it keeps its keys in order) and takes the
// keys its unmarshaler accepts.
func configPaths(t *testing.T) []string {
	t.Helper()
	users := userKeys(t)
	var out []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ == userType {
			for _, k := range users {
				out = append(out, prefix+"."+k)
			}
			return
		}
		switch typ.Kind() {
		case reflect.Struct:
			for i := range typ.NumField() {
				f := typ.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if !f.IsExported() || name == "" || name == "-" {
					continue
				}
				p := name
				if prefix != "" {
					p = prefix + "." + name
				}
				out = append(out, p)
				walk(p, f.Type)
			}
		case reflect.Slice:
			if typ == cidrType {
				return
			}
			elem := typ.Elem()
			for elem.Kind() == reflect.Pointer {
				elem = elem.Elem()
			}
			if elem.Kind() == reflect.Struct {
				walk(prefix+"[]", elem)
			}
		}
	}
	walk("", reflect.TypeFor[config.Config]())
	return out
}

func TestEndpointKeysMatchStruct(t *testing.T) {
	got := knownKeys(t, "listen: 127.0.0.1:8080\nservices:\n  - name: api\n    builds:\n      - id: \"1\"\n        endpoints: [{address: 127.0.0.1:1, no_such_key: 1}]\n")
	var want []string
	typ := reflect.TypeFor[config.Endpoint]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
		want = append(want, name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("endpoint keys accepted by the loader %v differ from the struct's yaml tags %v", got, want)
	}
}

func TestConfigurationDocCoversEveryField(t *testing.T) {
	doc := readFile(t, "docs/configuration.md")
	paths := configPaths(t)
	if len(paths) < 100 {
		t.Fatalf("walked only %d config paths; the walker is broken", len(paths))
	}
	var missing []string
	for _, p := range paths {
		if !strings.Contains(doc, "`"+p+"`") {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		t.Errorf("docs/configuration.md does not document %d config fields (write each as `path` in a table row):\n  %s",
			len(missing), strings.Join(missing, "\n  "))
	}
}

// pathCell matches a table row's first cell that names a config field.
var pathCell = regexp.MustCompile("^\\| `([a-z_]+(?:\\[\\])?(?:\\.[a-z_]+(?:\\[\\])?)*)` \\|")

type docRow struct {
	line          int
	path, deflt   string
	cells         []string
	defaultIsCode bool
}

// referenceRows returns the rows of configuration.md's field tables.
func referenceRows(t *testing.T, doc string) []docRow {
	var rows []docRow
	for i, line := range strings.Split(doc, "\n") {
		m := pathCell.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.ReplaceAll(line, `\|`, "\x00"), "|") {
			cells = append(cells, strings.TrimSpace(strings.ReplaceAll(c, "\x00", "|")))
		}
		cells = cells[1 : len(cells)-1] // before the first and after the last |
		r := docRow{line: i + 1, path: m[1], cells: cells}
		if len(cells) < 4 {
			t.Errorf("configuration.md:%d: a field row needs 4 cells (field | type | default | meaning), has %d", i+1, len(cells))
			continue
		}
		d := strings.TrimSpace(cells[2])
		if len(d) > 2 && strings.HasPrefix(d, "`") && strings.HasSuffix(d, "`") && strings.Count(d, "`") == 2 {
			r.deflt, r.defaultIsCode = d[1:len(d)-1], true
		}
		rows = append(rows, r)
	}
	return rows
}

func TestConfigurationDocHasNoStaleField(t *testing.T) {
	doc := readFile(t, "docs/configuration.md")
	known := map[string]bool{}
	for _, p := range configPaths(t) {
		known[p] = true
	}
	rows := referenceRows(t, doc)
	if len(rows) < 100 {
		t.Fatalf("found only %d field rows in docs/configuration.md", len(rows))
	}
	seen := map[string]int{}
	for _, r := range rows {
		if !known[r.path] {
			t.Errorf("configuration.md:%d documents `%s`, which the config does not have", r.line, r.path)
		}
		if l, dup := seen[r.path]; dup {
			t.Errorf("configuration.md:%d documents `%s` again (first at line %d)", r.line, r.path, l)
		}
		seen[r.path] = r.line
	}
}

// minimalConfig leaves every field with a default unset, so Parse fills it.
const minimalConfig = `listen: 127.0.0.1:8080
services:
  - name: api
    builds:
      - id: "1"
        endpoints: [127.0.0.1:9001]
    release:
      gates: [{name: smoke, url: "http://127.0.0.1:9/gate"}]
      analysis:
        metrics: [{name: cpu, prometheus: {address: "http://127.0.0.1:9", query: up}, condition: "< 1"}]
alerts:
  channels:
    - {name: ops, kind: webhook, url: "http://127.0.0.1:9/hook", secret: s3cret}
  monitor: {max_errors: 1}
`

// defaults renders the value of every field of a parsed config as the
// documentation writes it: durations as Go durations, percentages with %,
// the first element of each list of structs under path[].
func defaults(prefix string, v reflect.Value, out map[string]string) {
	if v.Type() == userType {
		u := v.Interface().(config.User)
		for _, s := range u.Sources {
			val := s.Name
			if s.Kind == "client_address" {
				val = "true"
			}
			out[prefix+"."+s.Kind] = val
		}
		out[prefix+".anonymous_cookie"] = u.AnonymousCookie
		return
	}
	switch {
	case v.Type() == durType:
		out[prefix] = time.Duration(v.Int()).String()
		return
	case v.Type() == timeDur:
		out[prefix] = time.Duration(v.Int()).String()
		return
	case v.Type() == pctType:
		out[prefix] = strconv.FormatFloat(v.Float(), 'g', -1, 64) + "%"
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			defaults(prefix, v.Elem(), out)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			p := name
			if prefix != "" {
				p = prefix + "." + name
			}
			defaults(p, v.Field(i), out)
		}
	case reflect.Slice:
		if v.Type().Elem() == pctType {
			var parts []string
			for i := range v.Len() {
				parts = append(parts, strconv.FormatFloat(v.Index(i).Float(), 'g', -1, 64))
			}
			out[prefix] = "[" + strings.Join(parts, ", ") + "]"
			return
		}
		if v.Len() > 0 && v.Type() != cidrType {
			defaults(prefix+"[]", v.Index(0), out)
		}
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		out[prefix] = fmt.Sprint(v.Interface())
	}
}

func sameValue(doc, got string) bool {
	if doc == got {
		return true
	}
	if a, err := time.ParseDuration(doc); err == nil {
		if b, err := time.ParseDuration(got); err == nil {
			return a == b
		}
	}
	return false
}

// Every default that the field tables write as code (`5s`) is the value the
// loader fills in.
func TestConfigurationDocDefaults(t *testing.T) {
	doc := readFile(t, "docs/configuration.md")
	cfg, err := config.Parse([]byte(minimalConfig), "minimal.yaml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cfg.Alerts.Channels {
		cfg.Alerts.Channels[i] = c.WithDefaults()
	}
	cfg.Alerts.Monitor.MaxErrors = 0 // set only because a monitor needs a threshold
	got := map[string]string{}
	defaults("", reflect.ValueOf(*cfg), got)
	checked := 0
	for _, r := range referenceRows(t, doc) {
		if !r.defaultIsCode {
			continue
		}
		v, ok := got[r.path]
		if !ok {
			t.Errorf("configuration.md:%d: `%s` documents default `%s`, but the loader leaves it unset", r.line, r.path, r.deflt)
			continue
		}
		checked++
		if !sameValue(r.deflt, v) {
			t.Errorf("configuration.md:%d: `%s` documents default `%s`, the loader fills in %q", r.line, r.path, r.deflt, v)
		}
	}
	if checked < 30 {
		t.Errorf("only %d defaults were checked; write literal defaults as `code` in the default column", checked)
	}
}

// yamlBlocks returns the ```yaml blocks of a Markdown file with their lines.
func yamlBlocks(doc string) (blocks []string, lines []int) {
	var cur []string
	in, start := false, 0
	for i, line := range strings.Split(doc, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```yaml":
			in, cur, start = true, nil, i+2
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks, lines = append(blocks, strings.Join(cur, "\n")+"\n"), append(lines, start)
		case in:
			cur = append(cur, line)
		}
	}
	return blocks, lines
}

// Every YAML block of the docs this package guards parses; every complete
// config (a top-level services: key) loads, and so does every fragment of
// top-level or service keys once placed in a minimal config.
func TestDocumentedConfigsLoad(t *testing.T) {
	for _, name := range []string{"docs/configuration.md", "docs/concepts.md", "docs/operations.md", "docs/migrating.md"} {
		blocks, lines := yamlBlocks(readFile(t, name))
		full := 0
		for i, b := range blocks {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(b), &n); err != nil {
				t.Errorf("the YAML block in %s at line %d does not parse: %v", name, lines[i], err)
			}
			if !regexp.MustCompile(`(?m)^services:`).MatchString(b) {
				if wrapped, ok := wrapFragment(&n, b); ok {
					if _, err := config.Parse([]byte(wrapped), fmt.Sprintf("%s:%d", name, lines[i]), testEnv); err != nil {
						t.Errorf("the fragment in %s at line %d does not load inside a minimal config:\n%v\n%s", name, lines[i], err, wrapped)
					}
				}
				continue
			}
			full++
			if _, err := config.Parse([]byte(b), fmt.Sprintf("%s:%d", name, lines[i]), testEnv); err != nil {
				t.Errorf("the config in %s at line %d does not load:\n%v", name, lines[i], err)
			}
		}
		if name == "docs/configuration.md" && full < 2 {
			t.Errorf("%s has %d complete configs; it should show at least a minimal and a full one", name, full)
		}
	}
}

// yamlKeys returns the yaml names of a struct's fields.
func yamlKeys(typ reflect.Type) map[string]bool {
	keys := map[string]bool{}
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
		keys[name] = true
	}
	return keys
}

// wrapFragment places a documented fragment where it belongs: top-level keys
// into a config with one service, service keys into that service. It
// reports false for a fragment it cannot place (nginx, prose, other files).
func wrapFragment(n *yaml.Node, b string) (string, bool) {
	if len(n.Content) == 0 || n.Content[0].Kind != yaml.MappingNode {
		return "", false
	}
	top, svc := yamlKeys(reflect.TypeFor[config.Config]()), yamlKeys(reflect.TypeFor[config.Service]())
	allTop, allSvc := true, true
	m := n.Content[0]
	for i := 0; i < len(m.Content); i += 2 {
		k := m.Content[i].Value
		allTop = allTop && top[k] && k != "services"
		allSvc = allSvc && svc[k]
	}
	const build = "    builds: [{id: \"1\", state: stable, endpoints: [127.0.0.1:9001]}]\n"
	switch {
	case allTop:
		if !regexp.MustCompile(`(?m)^listen:`).MatchString(b) {
			b = "listen: 127.0.0.1:8080\n" + b
		}
		return b + "services:\n  - name: api\n" + build, true
	case allSvc:
		var ind strings.Builder
		for _, line := range strings.Split(strings.TrimRight(b, "\n"), "\n") {
			ind.WriteString("    " + line + "\n")
		}
		out := "listen: 127.0.0.1:8080\nservices:\n  - name: api\n" + ind.String()
		if m := regexp.MustCompile(`(?m)^builds:`); !m.MatchString(b) {
			out += build
		}
		return out, true
	}
	return "", false
}

// Relative links in README.md and the docs this package guards point at
// files that exist.
func TestDocLinks(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, name := range []string{"README.md", "docs/configuration.md", "docs/concepts.md", "docs/operations.md", "docs/migrating.md"} {
		doc := readFile(t, name)
		for _, m := range link.FindAllStringSubmatch(doc, -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			rel := path.Join(path.Dir(name), target)
			if !exists(rel) {
				t.Errorf("%s links to %s, which does not exist", name, m[1])
			}
		}
	}
}

// ---------------------------------------------------------------------------
// docs/migrating.md: commands that exist are not called missing, and the
// other way round.

// ctlHelp runs `canaryctl WORDS --help` and reports whether WORDS name a
// command, and whether that command has subcommands.
func ctlHelp(words []string) (found, parent bool) {
	var out, errOut bytes.Buffer
	code := canaryctl.Run(context.Background(), append(slices.Clone(words), "--help"), &out, &errOut, nil)
	found = code == 0 && strings.Contains(out.String(), "canaryctl "+strings.Join(words, " "))
	return found, strings.Contains(out.String(), "Available Commands:")
}

// ctlExists reports whether a command line names an existing command: each
// word is a subcommand while the command so far has subcommands; the first
// word after a leaf command is an argument.
func ctlExists(words []string) (cmd string, ok bool) {
	for i := range words {
		found, parent := ctlHelp(words[:i+1])
		if !found {
			return strings.Join(words[:i+1], " "), false
		}
		if !parent {
			return strings.Join(words[:i+1], " "), true
		}
	}
	return strings.Join(words, " "), true
}

func TestMigratingCommands(t *testing.T) {
	doc := readFile(t, "docs/migrating.md")
	span := regexp.MustCompile("`canaryctl ([^`]*)`")
	word := regexp.MustCompile(`^[a-z][a-z-]*$`)
	checked := map[string]bool{}
	for i, line := range strings.Split(doc, "\n") {
		spans := span.FindAllStringSubmatchIndex(line, -1)
		for k, m := range spans {
			// A command marked "not built yet" before the next command on the line.
			rest := line[m[1]:]
			if k+1 < len(spans) {
				rest = line[m[1]:spans[k+1][0]]
			}
			notBuilt := strings.Contains(rest, "not built yet")
			var words []string
			for _, w := range strings.Fields(line[m[2]:m[3]]) {
				if !word.MatchString(w) {
					break
				}
				words = append(words, w)
			}
			if len(words) == 0 {
				continue
			}
			cmd, ok := ctlExists(words)
			checked[cmd] = true
			switch {
			case ok && notBuilt:
				t.Errorf("migrating.md:%d says `canaryctl %s` is not built yet, but it exists", i+1, cmd)
			case !ok && !notBuilt:
				t.Errorf("migrating.md:%d shows `canaryctl %s`, which does not exist; follow it with \"not built yet\"", i+1, cmd)
			}
		}
	}
	if len(checked) < 8 {
		t.Errorf("only %d canaryctl commands found in migrating.md", len(checked))
	}
}

// ---------------------------------------------------------------------------
// compose.yaml, deploy/*

type compose struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Build       any            `yaml:"build"`
	Command     []string       `yaml:"command"`
	Environment map[string]any `yaml:"environment"`
	Volumes     []any          `yaml:"volumes"`
	Ports       []string       `yaml:"ports"`
	DependsOn   any            `yaml:"depends_on"`
}

type mount struct{ source, target string }

func (s composeService) mounts(t *testing.T, name string) []mount {
	var out []mount
	for _, v := range s.Volumes {
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Errorf("compose service %s: volume %q has no target", name, v)
				continue
			}
			out = append(out, mount{parts[0], parts[1]})
		case map[string]any:
			src, _ := v["source"].(string)
			dst, _ := v["target"].(string)
			out = append(out, mount{src, dst})
		default:
			t.Errorf("compose service %s: volume %v is neither a string nor a mapping", name, v)
		}
	}
	return out
}

// composeValue resolves compose's ${VAR:-default} to the default, as if the
// variable were unset.
func composeValue(s string) string {
	return regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}`).ReplaceAllString(s, "$1")
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func port(t *testing.T, addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	return p
}

func TestCompose(t *testing.T) {
	var c compose
	if err := yaml.Unmarshal([]byte(readFile(t, "compose.yaml")), &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	var gw string
	for name, s := range c.Services {
		// Build contexts and Dockerfiles exist.
		if s.Build != nil {
			ctx, dockerfile := ".", "Dockerfile"
			switch b := s.Build.(type) {
			case string:
				ctx = b
			case map[string]any:
				if v, ok := b["context"].(string); ok {
					ctx = v
				}
				if v, ok := b["dockerfile"].(string); ok {
					dockerfile = v
				}
			}
			if !exists(ctx) || !exists(path.Join(ctx, dockerfile)) {
				t.Errorf("compose service %s builds %s/%s, which does not exist", name, ctx, dockerfile)
			}
			if name == "canaryd" {
				gw = name
			}
		} else if s.Image == "" {
			t.Errorf("compose service %s has neither image nor build", name)
		}
		// Every file it mounts exists in the repository; named volumes are declared.
		for _, m := range s.mounts(t, name) {
			switch {
			case strings.HasPrefix(m.source, "/"):
				t.Errorf("compose service %s mounts the host path %s; mount files of the repository (./...)", name, m.source)
			case strings.HasPrefix(m.source, "."):
				if !exists(m.source) {
					t.Errorf("compose service %s mounts %s, which is not in the repository", name, m.source)
				}
			default:
				if _, ok := c.Volumes[m.source]; !ok {
					t.Errorf("compose service %s uses the volume %s, not declared under volumes:", name, m.source)
				}
			}
		}
	}
	if gw == "" {
		t.Fatal("compose.yaml has no service canaryd built from the repository")
	}
	g := c.Services[gw]

	// The config it mounts loads.
	cfgPath := flagValue(g.Command, "--config")
	if cfgPath == "" {
		t.Fatalf("compose service canaryd: command %v has no --config", g.Command)
	}
	var cfgSource string
	for _, m := range g.mounts(t, gw) {
		if m.target == cfgPath {
			cfgSource = m.source
		}
	}
	if cfgSource == "" {
		t.Fatalf("compose service canaryd reads %s, which no volume mounts", cfgPath)
	}
	env := map[string]string{}
	for k, v := range g.Environment {
		env[k] = composeValue(fmt.Sprint(v))
	}
	cfg, err := config.Parse([]byte(readFile(t, cfgSource)), cfgSource, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("the config compose mounts does not load (variables from the service's environment:):\n%v", err)
	}

	// Listeners reachable from other containers and published.
	published := map[string]bool{}
	for _, p := range g.Ports {
		parts := strings.Split(p, ":")
		published[parts[len(parts)-1]] = true
	}
	for _, l := range []struct{ field, addr string }{{"listen", cfg.Listen}, {"admin.listen", cfg.Admin.Listen}} {
		host, p, err := net.SplitHostPort(l.addr)
		if err != nil {
			t.Fatalf("%s: %s %q: %v", cfgSource, l.field, l.addr, err)
		}
		if host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1" {
			t.Errorf("%s: %s %s listens on loopback inside the container: nothing outside it can connect", cfgSource, l.field, l.addr)
		}
		if !published[p] {
			t.Errorf("compose service canaryd does not publish port %s of %s", p, l.field)
		}
	}

	// The store lives on a named volume, so it survives the container.
	storePath, isSQLite := strings.CutPrefix(cfg.Store, "sqlite://")
	onVolume := false
	for _, m := range g.mounts(t, gw) {
		if _, named := c.Volumes[m.source]; named && isSQLite && strings.HasPrefix(storePath, m.target+"/") {
			onVolume = true
		}
	}
	if !onVolume {
		t.Errorf("%s: store %s is not on a named volume of the canaryd service", cfgSource, cfg.Store)
	}

	// Every endpoint is a compose service listening on that port.
	builds := 0
	for _, s := range cfg.Services {
		for _, b := range s.Builds {
			builds++
			for _, e := range b.Endpoints {
				host, p, _ := net.SplitHostPort(e.Address)
				app, ok := c.Services[host]
				if !ok {
					t.Errorf("%s: build %s endpoint %s: no compose service %q", cfgSource, b.ID, e.Address, host)
					continue
				}
				if l := flagValue(app.Command, "-listen"); l != "" && port(t, l) != p {
					t.Errorf("%s: build %s endpoint %s, but compose service %s listens on %s", cfgSource, b.ID, e.Address, host, l)
				}
			}
		}
	}
	if builds < 2 {
		t.Errorf("%s declares %d builds; the compose set-up shows two versions of an app", cfgSource, builds)
	}

	// Prometheus scrapes canaryd's admin listener.
	prom, ok := c.Services["prometheus"]
	if !ok {
		t.Fatal("compose.yaml has no prometheus service")
	}
	var promConfig string
	promMounts := map[string]string{}
	for _, m := range prom.mounts(t, "prometheus") {
		promMounts[m.target] = m.source
		if m.target == "/etc/prometheus/prometheus.yml" {
			promConfig = m.source
		}
	}
	if promConfig == "" {
		t.Fatal("compose service prometheus does not mount a config at /etc/prometheus/prometheus.yml")
	}
	var pc struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string         `yaml:"job_name"`
			MetricsPath   string         `yaml:"metrics_path"`
			Authorization map[string]any `yaml:"authorization"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, promConfig)), &pc); err != nil {
		t.Fatalf("%s: %v", promConfig, err)
	}
	scraped := false
	for _, sc := range pc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, p, _ := net.SplitHostPort(target)
				if host != gw {
					continue
				}
				scraped = true
				if p != port(t, cfg.Admin.Listen) {
					t.Errorf("%s scrapes %s, but canaryd's admin listener is %s", promConfig, target, cfg.Admin.Listen)
				}
				if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
					t.Errorf("%s scrapes %s; canaryd serves /metrics", promConfig, sc.MetricsPath)
				}
				if cfg.Admin.MetricsAuth && sc.Authorization == nil {
					t.Errorf("%s: canaryd requires a token for /metrics (metrics_auth) but job %s sends none", promConfig, sc.JobName)
				}
			}
		}
	}
	if !scraped {
		t.Errorf("%s has no scrape target %s:PORT", promConfig, gw)
	}
	for _, rf := range pc.RuleFiles {
		inContainer := rf
		if !strings.HasPrefix(rf, "/") {
			inContainer = "/etc/prometheus/" + rf
		}
		src, ok := promMounts[inContainer]
		if !ok {
			t.Errorf("%s loads the rule file %s, which compose does not mount at %s", promConfig, rf, inContainer)
			continue
		}
		// promtool resolves relative rule files next to the config: keep the
		// repository layout the same as the container's.
		if path.Join(path.Dir(promConfig), rf) != path.Clean(src) {
			t.Errorf("rule file %s is mounted from %s; keep it next to %s under the same name", rf, src, promConfig)
		}
	}
}

// scrapeNames starts a metrics registry with a canary and a stable build
// that served requests, scrapes its handler as Prometheus would, and
// returns every series name.
func scrapeNames(t *testing.T) map[string]bool {
	reg := metrics.New(metrics.Options{})
	for _, b := range []struct{ id, state string }{{"41", "stable"}, {"42", "canary"}} {
		bm := reg.Build("api", b.id)
		bm.SetState(b.state)
		for _, status := range []int{200, 503} {
			bm.Begin()
			bm.End(metrics.Outcome{Status: status, Duration: 3 * time.Millisecond, User: 7})
		}
		bm.Begin()
		bm.End(metrics.Outcome{ConnErr: true, Duration: time.Millisecond, User: 8})
	}
	rec := httptest.NewRecorder()
	reg.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	names := map[string]bool{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		names[name] = true
	}
	return names
}

func TestPrometheusFilesUseExportedMetrics(t *testing.T) {
	names := scrapeNames(t)
	for _, want := range []string{"canaryd_requests_total", "canaryd_request_duration_seconds_bucket", "canaryd_users_harmed"} {
		if !names[want] {
			t.Fatalf("the scrape has no %s; the scrape set-up of this test is broken: %v", want, names)
		}
	}
	files, _ := filepath.Glob(filepath.Join(repo, "deploy", "*.yml"))
	more, _ := filepath.Glob(filepath.Join(repo, "deploy", "dashboards", "*.json"))
	files = append(files, more...)
	metricRef := regexp.MustCompile(`\b(canaryd_[a-z0-9_]+)`)
	used := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricRef.FindAllStringSubmatch(string(b), -1) {
			used++
			if !names[m[1]] {
				t.Errorf("%s uses %s, which canaryd's /metrics does not export", filepath.Base(f), m[1])
			}
		}
	}
	if used < 3 {
		t.Errorf("deploy/*.yml use only %d canaryd metric names", used)
	}
}

// promtool (Debian package prometheus, installed by make test) checks the
// Prometheus config and the rule files it loads.
func TestPromtoolChecksPrometheusConfig(t *testing.T) {
	const promtool = "/usr/bin/promtool"
	if _, err := os.Stat(promtool); err != nil {
		t.Fatalf("%s not found: install the Debian package \"prometheus\" (make test does)", promtool)
	}
	out, err := exec.Command(promtool, "check", "config", filepath.Join(repo, "deploy", "prometheus.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config deploy/prometheus.yml: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "rule files found") {
		t.Errorf("promtool checked no rule file:\n%s", out)
	}
}

// ---------------------------------------------------------------------------
// Dockerfile

type instruction struct {
	line int
	cmd  string // upper case
	args string
}

type stage struct {
	image, name string
	instr       []instruction
}

func parseDockerfile(t *testing.T, text string) []stage {
	var stages []stage
	var cont strings.Builder
	start := 0
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cont.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cont.Len() == 0 {
			start = i + 1
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cont.WriteString(s + " ")
			continue
		}
		cont.WriteString(trimmed)
		full := cont.String()
		cont.Reset()
		cmd, args, _ := strings.Cut(full, " ")
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Errorf("Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, in)
	}
	return stages
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, readFile(t, "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages; want a builder and a final stage", len(stages))
	}
	if b := stages[0].image; !strings.HasPrefix(b, "golang:1.26") {
		t.Errorf("builder image is %s, want golang:1.26", b)
	}
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.image, "gcr.io/distroless/static") && final.image != "scratch" {
		t.Errorf("final image %s: want distroless static or scratch (a static binary needs nothing else)", final.image)
	}
	names := map[string]bool{}
	for _, s := range stages[:len(stages)-1] {
		names[s.name] = true
	}

	var buildArgs, pkgs []string
	cgoOff := false
	for _, s := range stages {
		for _, in := range s.instr {
			switch in.cmd {
			case "ENV":
				if strings.Contains(in.args, "CGO_ENABLED=0") {
					cgoOff = true
				}
			case "COPY":
				f := strings.Fields(in.args)
				from := ""
				var srcs []string
				for _, a := range f[:len(f)-1] {
					if v, ok := strings.CutPrefix(a, "--from="); ok {
						from = v
					} else if !strings.HasPrefix(a, "--") {
						srcs = append(srcs, a)
					}
				}
				if from != "" {
					if !names[from] {
						t.Errorf("Dockerfile:%d: COPY --from=%s names no earlier stage", in.line, from)
					}
					continue
				}
				for _, src := range srcs {
					if !exists(src) {
						t.Errorf("Dockerfile:%d: COPY %s: not in the repository", in.line, src)
					}
				}
			case "RUN":
				if strings.Contains(in.args, "CGO_ENABLED=0") {
					cgoOff = true
				}
				if !strings.Contains(in.args, "go build") {
					continue
				}
				buildArgs = append(buildArgs, in.args)
				for _, w := range strings.Fields(in.args) {
					if strings.HasPrefix(w, "./") {
						pkgs = append(pkgs, w)
					}
				}
			}
		}
	}
	if len(buildArgs) == 0 {
		t.Fatal("Dockerfile runs no go build")
	}
	run := strings.Join(buildArgs, "\n")
	if !cgoOff {
		t.Error("Dockerfile does not set CGO_ENABLED=0: the binary would not be static")
	}
	if !strings.Contains(run, "-trimpath") {
		t.Error("Dockerfile's go build has no -trimpath")
	}
	if !strings.Contains(run, "-X "+versionSymbol+"=") {
		t.Errorf("Dockerfile's go build does not set %s with -ldflags -X", versionSymbol)
	}
	for _, want := range []string{"./cmd/canaryd", "./cmd/canaryctl"} {
		if !slices.Contains(pkgs, want) {
			t.Errorf("Dockerfile does not build %s (builds %v)", want, pkgs)
		}
	}

	// Final stage: the binaries it runs are copied in, it runs as non-root,
	// the store directory is a volume.
	var user, entry string
	var volumes, copied []string
	for _, in := range final.instr {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "VOLUME":
			volumes = append(volumes, strings.Fields(strings.Trim(in.args, "[]\" "))...)
		case "COPY":
			f := strings.Fields(in.args)
			dst := f[len(f)-1]
			for _, a := range f[:len(f)-1] {
				if !strings.HasPrefix(a, "--") {
					copied = append(copied, path.Join(dst, path.Base(a)))
				}
			}
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("final stage runs as %q; want a non-root USER", user)
	}
	var exe string
	if m := regexp.MustCompile(`^\["([^"]+)"`).FindStringSubmatch(entry); m != nil {
		exe = m[1]
	}
	if exe == "" || !slices.Contains(copied, exe) {
		t.Errorf("ENTRYPOINT %s runs %q, which the final stage does not copy in (copies %v)", entry, exe, copied)
	}
	if len(volumes) == 0 {
		t.Error("final stage declares no VOLUME for the store")
	}

	// The same packages build with the same flags, the -X flag reaches the
	// version, and the result is static.
	dir := t.TempDir()
	args := append([]string{"build", "-trimpath", "-ldflags", "-s -w -X " + versionSymbol + "=docs-test", "-o", dir + "/"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("go build of %v took %s", pkgs, time.Since(start).Round(time.Millisecond))
	out, err := exec.Command(filepath.Join(dir, "canaryd"), "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "canaryd docs-test ") {
		t.Errorf("canaryd version with -X %s=docs-test printed %q (%v)", versionSymbol, out, err)
	}
	for _, bin := range []string{"canaryd", "canaryctl"} {
		f, err := elf.Open(filepath.Join(dir, bin))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked (has an ELF interpreter)", bin)
			}
		}
		f.Close()
	}
}

// ---------------------------------------------------------------------------
// deploy/canaryd.service

func parseUnit(text string) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	sec := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			sec = strings.Trim(line, "[]")
			out[sec] = map[string][]string{}
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		if sec != "" {
			out[sec][strings.TrimSpace(k)] = append(out[sec][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	u := parseUnit(readFile(t, "deploy/canaryd.service"))
	get := func(sec, key string) string {
		v := u[sec][key]
		if len(v) == 0 {
			return ""
		}
		return v[len(v)-1]
	}
	need := []struct{ sec, key, want string }{
		{"Unit", "Description", ""},
		{"Unit", "After", "network-online.target"},
		{"Unit", "Wants", "network-online.target"},
		{"Service", "ExecStart", " serve --config "},
		{"Service", "ExecReload", "HUP $MAINPID"},
		{"Service", "Restart", "on-failure"},
		{"Service", "User", ""},
		{"Service", "StateDirectory", "canaryd"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "ProtectHome", "yes"},
		{"Service", "PrivateTmp", "yes"},
		{"Service", "PrivateDevices", "yes"},
		{"Service", "LimitNOFILE", ""},
		{"Service", "TimeoutStopSec", ""},
		{"Install", "WantedBy", "multi-user.target"},
	}
	for _, n := range need {
		v := get(n.sec, n.key)
		if v == "" || !strings.Contains(v, n.want) {
			t.Errorf("deploy/canaryd.service: [%s] %s=%q, want a value containing %q", n.sec, n.key, v, n.want)
		}
	}
	if user := get("Service", "User"); user == "root" || user == "0" {
		t.Errorf("deploy/canaryd.service runs as %s; want a dedicated user", user)
	}
	if exe := strings.Fields(get("Service", "ExecStart")); len(exe) == 0 || !strings.HasPrefix(exe[0], "/") {
		t.Errorf("ExecStart %v: want an absolute path", exe)
	}
	// systemd must wait longer than canaryd drains (proxy.shutdown_timeout).
	stop, err := time.ParseDuration(strings.ReplaceAll(get("Service", "TimeoutStopSec"), " ", ""))
	def, _ := config.Parse([]byte(minimalConfig), "minimal.yaml", testEnv)
	if err != nil || def == nil || stop <= def.Proxy.ShutdownTimeout.D() {
		t.Errorf("TimeoutStopSec=%s must be longer than the default proxy.shutdown_timeout (%v)", get("Service", "TimeoutStopSec"), def.Proxy.ShutdownTimeout.D())
	}
}
