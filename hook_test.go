package deploydb_test

import (
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/deploydb/deploydb"
)

// TestParseHookTemplate checks that what could loop or recurse at render
// time, and a text too long to parse safely, is refused when the template
// is parsed, with a message that says what.
func TestParseHookTemplate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text, want string
	}{
		{"ErrRange", `{{range 100000000000}}{{end}}`, "t:1: range is not supported"},
		{"ErrRangeInIf", "{{if .Service}}\n{{else}}{{range $i, $c := .Service}}{{end}}{{end}}", "t:2: range is not supported"},
		{"ErrTemplate", `{{template "t" .}}`, "template is not supported"},
		{"ErrDefine", `{{define "x"}}{{template "x"}}{{end}}{{template "x"}}`, `define and block are not supported in a hook template (it defines "x")`},
		{"ErrBlock", `{{block "x" .}}{{.Service}}{{end}}`, "define and block are not supported"},
		{"ErrTooLong", strings.Repeat("{{if 1}}", deploydb.MaxHookTemplate), "a hook template is at most 65536"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := deploydb.ParseHookTemplate("t", tc.text, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseHookTemplate error %v, want one containing %q", err, tc.want)
			}
		})
	}
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		text := `{{with .Artifact}}{{if eq .Group "com.example"}}{{$v := .Version}}{{json (printf "%s %5.2f" $v 3.14159)}}{{end}}{{end}}`
		tp, err := deploydb.ParseHookTemplate("t", text, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := deploydb.RenderHookTemplate(tp, deploydb.SampleHookContext(deploydb.EventDeploymentCreated))
		if want := `"1.0.0 \"rc\" \u0026 more  3.14"`; err != nil || string(got) != want {
			t.Fatalf("rendered %s, %v; want %s", got, err, want)
		}
	})
}

// TestRenderHookTemplateBounded checks that templates that would make
// more than MaxHookRender bytes, in their output or in what their
// functions produce on the way, fail quickly and without allocating it.
func TestRenderHookTemplateBounded(t *testing.T) {
	doubling := `{{$x := printf "%0999999d" 1}}` + strings.Repeat(`{{$x = printf "%s%s" $x $x}}`, 40) + `{{len $x}}`
	for _, tc := range []struct{ name, text string }{
		{"ErrDoubling", doubling},
		{"ErrManyArgs", `{{$x := printf "%0999999d" 1}}{{printf "` + strings.Repeat("%s", 2000) + `"` + strings.Repeat(" $x", 2000) + `}}`},
		{"ErrWidths", `{{printf "` + strings.Repeat("%0999999d", 2000) + `" 1}}`},
		{"ErrStarWidth", `{{printf "%*d%*d" 999999 1 999999 1}}`},
		{"ErrPrint", `{{$x := printf "%0999999d" 1}}{{print` + strings.Repeat(" $x", 2000) + `}}`},
		{"ErrEscapers", `{{$x := printf "%0600000d" 1}}{{html $x $x}}{{js $x $x}}{{urlquery $x $x}}`},
		{"ErrJSON", `{{$x := printf "%0999999s" "<"}}{{$y := json $x}}{{$z := json $y}}`},
		{"ErrBase64", `{{$x := printf "%0999999d" 1}}{{$y := base64 $x}}{{$z := base64 $y}}`},
		{"ErrPathescape", `{{$x := printf "%0999999s" "/"}}{{$y := pathescape $x}}`},
		{"ErrOutput", strings.Repeat(`{{printf "%0500000d" 1}}`, 3)},
		{"ErrOutputContext", strings.Repeat(`{{.}}{{.}}{{.}}{{.}}{{.}}{{.}}{{.}}{{.}}`, 800)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := deploydb.ParseHookTemplate("t", tc.text, nil)
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			out, err := deploydb.RenderHookTemplate(tp, deploydb.SampleHookContext(deploydb.EventDeploymentCreated))
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), "renders more than 1048576 bytes") {
				t.Fatalf("rendered %d bytes, %v; want an error saying it renders too much", len(out), err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > maxRenderAlloc(tc.text) {
				t.Fatalf("render allocated %d bytes", alloc)
			}
		})
	}
}

// TestRenderHookTemplateConcurrent renders one template from several
// goroutines, as the dispatcher's workers do: each render has its own
// budget, and (under -race) they share nothing else that changes.
func TestRenderHookTemplateConcurrent(t *testing.T) {
	t.Parallel()
	tp, err := deploydb.ParseHookTemplate("t", `{{printf "%s-%d" .Service .EventID}} {{json .Reason}} {{base64 .Actor}}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `service-1 "\"why\" \u0026 how" YW5vbnltb3Vz`
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				got, err := deploydb.RenderHookTemplate(tp, deploydb.SampleHookContext(deploydb.EventDeploymentCreated))
				if err != nil || string(got) != want {
					t.Errorf("rendered %s, %v; want %s", got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// maxRenderAlloc is what a render of text may allocate in all: a few times
// MaxHookRender for the output and the functions' results, and some for
// each byte of the template it runs.
func maxRenderAlloc(text string) uint64 {
	return 16*deploydb.MaxHookRender + 1024*uint64(len(text))
}

// FuzzHookTemplate checks that any template text either fails to parse
// with an error, or renders against every event's sample context without
// panicking, to at most MaxHookRender bytes, allocating a bounded amount,
// and (by the fuzzer's own watch on hung inputs) in bounded time.
func FuzzHookTemplate(f *testing.F) {
	for _, seed := range []string{
		"https://jenkins.example.com/job/deploy-{{.Service}}/buildWithParameters?VERSION={{urlquery .Artifact.Version}}&DEPLOYMENT_ID={{.Deployment.ID}}",
		`Basic {{base64 (printf "%s:%s" (env "USER") (env "TOKEN"))}}`,
		`{"text": {{json (printf "%s %s failed in %s" .Service .Artifact.Version .Environment)}}}`,
		`{{if eq .Event "promotion.completed"}}{{.Promotion.Name}} {{.Promotion.Status}}{{else}}{{pathescape .Reason}}{{end}}`,
		`{{with $a := .Artifact}}{{$a.Group}}:{{$a.Name}}{{end}}{{print .EventID .Flow}}{{println .Time}}{{html .Detail}}{{js .Detail}}`,
		`{{slice .Service 1 3}}{{index .Service 0}}{{len .Actor}}{{and 1 0}}{{or 0 "x"}}{{not true}}{{lt 1 2}}`,
		`{{printf "%q %x % #x %+v %#v %08.3f %[2]*[1]d %!" .Reason .Reason .Reason . .Artifact 3.5 4 5}}`,
		`{{range 100000000000}}{{end}}`,
		`{{define "x"}}{{template "x"}}{{end}}{{template "x"}}`,
		`{{$x := printf "%0999999d" 1}}{{$x = printf "%s%s" $x $x}}{{$x = printf "%s%s" $x $x}}`,
		`{{printf "%0999999d%0999999d" 1 2}}`,
		`{{.Nope}}{{nofunc}}`,
		`{{ /* comment */ }}{{- .Service -}}`,
		`{{env "UNSET"}}`,
	} {
		f.Add(seed, uint8(0))
	}
	env := map[string]string{"USER": "user", "TOKEN": `t"o&k en`}
	f.Fuzz(func(t *testing.T, text string, event uint8) {
		tp, err := deploydb.ParseHookTemplate("t", text, env)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("parse error without a message")
			}
			return
		}
		c := deploydb.SampleHookContext(deploydb.WebhookEvents[int(event)%len(deploydb.WebhookEvents)])
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out, err := deploydb.RenderHookTemplate(tp, c)
		runtime.ReadMemStats(&after)
		switch {
		case err != nil && (out != nil || err.Error() == ""):
			t.Fatalf("render failed with output %q or without a message: %v", out, err)
		case len(out) > deploydb.MaxHookRender:
			t.Fatalf("rendered %d bytes", len(out))
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > maxRenderAlloc(text) {
			t.Fatalf("render allocated %d bytes", alloc)
		}
	})
}
