package config_test

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
)

// mustWriteDir writes files (slash-separated path → content) into a new
// temporary directory and returns it.
func mustWriteDir(tb testing.TB, files map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// baseFiles is a small valid configuration that cases add to or override.
func baseFiles() map[string]string {
	return map[string]string{
		"services/svc.yml":       "artifacts: [com.example:svc]\npipelines: [pipe]\n",
		"environments/integ.yml": "description: Integration\n",
		"pipelines/pipe.yml":     "environments:\n  integ:\n    promotions: [smoke]\n",
		"promotions/smoke.yml":   "type: basic\n",
	}
}

// with returns baseFiles with files added or replaced; an empty content
// removes the file.
func with(files map[string]string) map[string]string {
	out := baseFiles()
	for name, content := range files {
		if content == "" {
			delete(out, name)
			continue
		}
		out[name] = content
	}
	return out
}

// eventGroups returns the valid event groups as a message lists them.
func eventGroups() string {
	var groups []string
	for _, e := range deploydb.WebhookEvents {
		g, _, _ := strings.Cut(string(e), ".")
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	return strings.Join(groups, ", ")
}

// eventsOf returns the valid events of group as a message lists them.
func eventsOf(group string) string {
	var events []string
	for _, e := range deploydb.WebhookEvents {
		if strings.HasPrefix(string(e), group+".") {
			events = append(events, string(e))
		}
	}
	return strings.Join(events, ", ")
}

// noEnv is a getenv with no variable set.
func noEnv(string) string { return "" }

// mustLoad loads dir and fails the test on error.
func mustLoad(tb testing.TB, dir string) *deploydb.Config {
	tb.Helper()
	cfg, err := config.LoadWith(dir, config.Options{Getenv: noEnv})
	if err != nil {
		tb.Fatalf("Load(%s): %v", dir, err)
	}
	return cfg
}

// mustProblems loads dir, which must fail, and returns its problems.
func mustProblems(tb testing.TB, dir string, getenv func(string) string) []config.Problem {
	tb.Helper()
	cfg, err := config.LoadWith(dir, config.Options{Getenv: getenv})
	if err == nil {
		tb.Fatalf("Load(%s) = %+v, want an error", dir, cfg)
	}
	if cfg != nil {
		tb.Errorf("Load(%s) returned a config with its error", dir)
	}
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		tb.Fatalf("Load(%s) error is %T, want *config.Error: %v", dir, err, err)
	}
	if len(cerr.Problems) == 0 {
		tb.Fatalf("Load(%s): *config.Error without problems", dir)
	}
	return cerr.Problems
}

func hooks(urls ...string) []deploydb.Hook {
	out := make([]deploydb.Hook, len(urls))
	for i, u := range urls {
		out[i] = deploydb.Hook{Name: u, URL: u}
	}
	return out
}

// checksumOf computes the documented checksum of dir independently: the
// SHA-256 of the sha256sum(1) manifest of its files, sorted by path.
func checksumOf(tb testing.TB, dir string, paths []string) string {
	tb.Helper()
	paths = slices.Sorted(slices.Values(paths))
	var manifest strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&manifest, "%x  %s\n", sha256.Sum256(data), p)
	}
	return fmt.Sprintf("%x", sha256.Sum256([]byte(manifest.String())))
}

func TestLoad_DeployDB03(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "testdata", "config", "deploydb-0.3")
	cfg := mustLoad(t, dir)

	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{
		"environments/basicEnv.yml",
		"pipelines/basicPipe.yml",
		"promotions/basicPromo.yml",
		"promotions/manualPromo.yml",
		"services/advServ.yml",
		"services/basicServ.yml",
		"webhook/basicWebhook.yml",
	}
	var files []deploydb.ConfigFile
	for _, p := range paths {
		data, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, deploydb.ConfigFile{Path: p, SHA256: fmt.Sprintf("%x", sha256.Sum256(data))})
	}
	want := &deploydb.Config{
		Checksum: checksumOf(t, dir, paths),
		Dir:      abs,
		Files:    files,
		Services: map[string]*deploydb.Service{
			"advServ": {
				Ident:           "advServ",
				Description:     "Advanced Service",
				Artifacts:       []string{"adv.group.1:bg1", "adv.group.2:bg2"},
				Pipelines:       []string{"basicPipe"},
				Promotions:      []string{"manualPromo"},
				FailureStrategy: deploydb.FailureNotify,
			},
			"basicServ": {
				Ident:           "basicServ",
				Description:     "Basic Service",
				Artifacts:       []string{"basic.group.1:bg1", "basic.group.2:bg2"},
				Pipelines:       []string{"basicPipe"},
				Promotions:      []string{"basicPromo"},
				FailureStrategy: deploydb.FailureNotify,
			},
		},
		Environments: map[string]*deploydb.Environment{
			"basicEnv": {
				Ident:       "basicEnv",
				Description: "Basic Environment",
				Webhook: deploydb.Webhook{
					deploydb.EventDeploymentCreated:   hooks("http://localhost:10000/job/basicEnv-deploy-created/build"),
					deploydb.EventDeploymentCompleted: hooks("http://localhost:10000/job/basicEnv-deploy-completed/build"),
				},
				Freezes: []deploydb.Freeze{},
			},
		},
		Pipelines: map[string]*deploydb.Pipeline{
			"basicPipe": {
				Ident:       "basicPipe",
				Description: "Basic pipeline",
				Environments: []deploydb.PipelineStage{
					{Environment: "basicEnv", Promotions: []string{"basicPromo"}},
				},
			},
		},
		Promotions: map[string]*deploydb.Promotion{
			"basicPromo": {
				Ident:       "basicPromo",
				Type:        deploydb.PromotionTypeBasic,
				Description: "Basic Smoke test for the Basic Service",
				Attributes:  map[string]any{},
			},
			"manualPromo": {
				Ident:       "manualPromo",
				Type:        deploydb.PromotionTypeManual,
				Description: "Manual LDAP Promotion",
				Attributes:  map[string]any{"allowedGroup": "ManualPromotionGroup"},
			},
		},
		Webhook: deploydb.Webhook{
			deploydb.EventDeploymentCreated: hooks("http://localhost:10000/job/notify-deployment-created/build"),
			deploydb.EventDeploymentStarted: hooks("http://localhost:10000/job/notify-deployment-started/build"),
			deploydb.EventDeploymentCompleted: hooks(
				"http://localhost:10000/job/notify-deployment-completed1/build",
				"http://localhost:10000/job/notify-deployment-completed2/build",
			),
			deploydb.EventPromotionCompleted: hooks("http://localhost:10000/job/notify-promotion-completed/build"),
		},
	}
	want.Auth = &deploydb.Auth{Tokens: []deploydb.Token{}, Anonymous: []deploydb.Scope{}}
	if diff := cmp.Diff(want, cfg, cmpopts.IgnoreFields(deploydb.Config{}, "HookNamed")); diff != "" {
		t.Errorf("Load(%s) mismatch (-want +got):\n%s", dir, diff)
	}
	// Every hook, global or of an environment, is known by its name.
	if len(cfg.HookNamed) != 7 {
		t.Errorf("HookNamed has %d hooks, want the 7 URLs of the 0.3 config", len(cfg.HookNamed))
	}
	for name, h := range cfg.HookNamed {
		if h.Name != name || h.URL != name {
			t.Errorf("HookNamed[%q] = %+v, want the bare URL hook of that name", name, h)
		}
	}
	// What the engine asks of the config: recipients in order, environment
	// hooks first.
	got := cfg.Hooks("basicEnv", deploydb.EventDeploymentCompleted)
	wantHooks := hooks(
		"http://localhost:10000/job/basicEnv-deploy-completed/build",
		"http://localhost:10000/job/notify-deployment-completed1/build",
		"http://localhost:10000/job/notify-deployment-completed2/build",
	)
	if diff := cmp.Diff(wantHooks, got); diff != "" {
		t.Errorf("Hooks(basicEnv, deployment.completed) mismatch (-want +got):\n%s", diff)
	}
}

func TestLoad_Example(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, filepath.Join("..", "examples", "config"))

	if got, want := slices.Sorted(maps.Keys(cfg.Services)), []string{"billing", "checkout"}; !slices.Equal(got, want) {
		t.Errorf("services = %v, want %v", got, want)
	}
	for _, ga := range [][2]string{{"com.example", "billing"}, {"com.example", "checkout"}} {
		if got := cfg.ServicesConsuming(ga[0], ga[1]); len(got) != 1 || got[0].Ident != ga[1] {
			t.Errorf("ServicesConsuming(%s:%s) = %v, want [%s]", ga[0], ga[1], got, ga[1])
		}
	}
	if got := cfg.Services["checkout"].FailureStrategy; got != deploydb.FailureRollback {
		t.Errorf("checkout failure strategy = %q, want rollback", got)
	}
	want := []deploydb.PipelineStage{
		{Environment: "integ", Promotions: []string{"smoke"}},
		{Environment: "staging", Promotions: []string{"smoke"}},
		{Environment: "prod", Promotions: []string{"release-approval"}},
	}
	if diff := cmp.Diff(want, cfg.Pipelines["standard"].Environments); diff != "" {
		t.Errorf("standard pipeline mismatch (-want +got):\n%s", diff)
	}
	for env, prod := range map[string]bool{"integ": false, "staging": false, "prod": true} {
		if got := cfg.Environments[env].Production; got != prod {
			t.Errorf("environment %s production = %v, want %v", env, got, prod)
		}
	}
	approval := cfg.Promotions["release-approval"]
	if approval.Type != deploydb.PromotionTypeManual || approval.Attributes["allowedGroup"] != "release-managers" {
		t.Errorf("release-approval = %+v, want manual for release-managers", approval)
	}
	// The example lists a placeholder for each event of the first
	// release; events added since may be left out of it.
	for _, e := range []deploydb.EventType{
		deploydb.EventDeploymentCreated, deploydb.EventDeploymentStarted, deploydb.EventDeploymentCompleted,
		deploydb.EventDeploymentFailed, deploydb.EventDeploymentVerified, deploydb.EventDeploymentSuperseded,
		deploydb.EventPromotionCompleted, deploydb.EventFlowCompleted,
	} {
		if got := cfg.Webhook[e]; len(got) != 1 || !strings.HasPrefix(got[0].URL, "http://127.0.0.1:9999/") {
			t.Errorf("global hooks of %s = %v, want one placeholder", e, got)
		}
	}
	for e, got := range cfg.Webhook {
		if len(got) != 1 || !strings.HasPrefix(got[0].URL, "http://127.0.0.1:9999/") {
			t.Errorf("global hooks of %s = %v, want one placeholder", e, got)
		}
	}
}

// TestLoad_Broken loads a directory where many files are broken at once
// and asserts that every problem of every file is reported, at its line,
// and nothing about the valid files.
func TestLoad_Broken(t *testing.T) {
	t.Parallel()
	problems := mustProblems(t, filepath.Join("..", "testdata", "config", "broken"), noEnv)

	tests := []struct {
		name    string
		file    string
		line    int
		field   string
		message string // a substring of the message
	}{
		{"ErrUnknownPipeline", "services/unknownPipeline.yml", 5, "pipelines[0]", `unknown pipeline "nope"`},
		{"ErrUnknownKey", "services/unknownKey.yml", 6, "owner", `unknown key "owner"`},
		{"ErrFailureStrategy", "services/badStrategy.yml", 5, "failureStrategy", `unknown failure strategy "explode"; valid: notify, rollback, ignore`},
		{"ErrYAMLSyntax", "services/syntax.yml", 3, "", "YAML syntax error"},
		{"ErrArtifactNoColon", "services/badArtifact.yml", 3, "artifacts[1]", `artifact "no-colon" must be group:name`},
		{"ErrArtifactTwoColons", "services/badArtifact.yml", 4, "artifacts[2]", `artifact "a:b:c" must be group:name`},
		{"ErrHookScheme", "environments/badURL.yml", 6, "webhook.deployment.created[1]", `invalid URL "ftp://127.0.0.1/created"`},
		{"ErrHookNotURL", "environments/badURL.yml", 8, "webhook.deployment.failed[0]", `invalid URL "not a url"`},
		{"ErrProductionType", "environments/badProduction.yml", 1, "production", "must be true or false, not a string"},
		{"ErrPipelineEmpty", "pipelines/empty.yml", 1, "environments", "at least one environment"},
		{"ErrPipelineUnknownEnvironment", "pipelines/unknownRefs.yml", 4, "environments.nowhere", `unknown environment "nowhere"`},
		{"ErrPipelineUnknownPromotion", "pipelines/unknownRefs.yml", 7, "environments.nowhere.promotions[1]", `unknown promotion "nope"`},
		{"ErrPromotionType", "promotions/badType.yml", 2, "type", `unknown promotion type "magic"; valid: basic, manual, soak`},
		{"ErrManualWithoutGroup", "promotions/manualNoGroup.yml", 1, "attributes.allowedGroup", "required for a manual promotion"},
		{"ErrSoakDuration", "promotions/badSoak.yml", 3, "attributes.duration", "positive duration"},
		{"ErrUnknownEvent", "webhook/global.yml", 5, "promotion.started", `unknown event "promotion.started"; valid: promotion.completed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range problems {
				if p.File == tt.file && p.Line == tt.line && p.Field == tt.field && strings.Contains(p.Message, tt.message) {
					return
				}
			}
			t.Errorf("no problem %s:%d: %s: ...%s... among\n%s", tt.file, tt.line, tt.field, tt.message, &config.Error{Problems: problems})
		})
	}
	t.Run("OnlyThose", func(t *testing.T) {
		if len(problems) != len(tests) {
			t.Errorf("got %d problems, want %d:\n%s", len(problems), len(tests), &config.Error{Problems: problems})
		}
	})
}

// manyKeys returns a mapping of n keys, k<first> to k<first+n-1>, one a line.
func manyKeys(first, n int) string {
	var b strings.Builder
	for i := first; i < first+n; i++ {
		fmt.Fprintf(&b, "k%d: v\n", i)
	}
	return b.String()
}

// TestLoad_Problems checks each rule on its own, against a valid base.
func TestLoad_Problems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		want  []config.Problem
	}{
		{
			name:  "ErrNoPipeline",
			files: map[string]string{"services/svc.yml": "description: x\nartifacts: [com.example:svc]\n"},
			want:  []config.Problem{{File: "services/svc.yml", Line: 1, Field: "pipelines", Message: "required: the service's pipeline, as a list of one"}},
		},
		{
			name:  "ErrEmptyPipelines",
			files: map[string]string{"services/svc.yml": "artifacts: [com.example:svc]\npipelines: []\n"},
			want:  []config.Problem{{File: "services/svc.yml", Line: 2, Field: "pipelines", Message: "required: the service's pipeline, as a list of one"}},
		},
		{
			name: "ErrTwoPipelines",
			files: map[string]string{
				"services/svc.yml":    "artifacts: [com.example:svc]\npipelines:\n  - pipe\n  - other\n",
				"pipelines/other.yml": "environments: {integ: }\n",
			},
			want: []config.Problem{{File: "services/svc.yml", Line: 3, Field: "pipelines", Message: "a service moves through exactly one pipeline, not 2"}},
		},
		{
			name:  "ErrUnknownServicePromotion",
			files: map[string]string{"services/svc.yml": "pipelines: [pipe]\npromotions:\n  - smoke\n  - nope\n"},
			want:  []config.Problem{{File: "services/svc.yml", Line: 4, Field: "promotions[1]", Message: `unknown promotion "nope"`}},
		},
		{
			name:  "ErrPromotionListedTwice",
			files: map[string]string{"services/svc.yml": "pipelines: [pipe]\npromotions: [smoke, smoke]\n"},
			want:  []config.Problem{{File: "services/svc.yml", Line: 2, Field: "promotions[1]", Message: `promotion "smoke" is listed twice`}},
		},
		{
			name:  "ErrArtifactEmptyPart",
			files: map[string]string{"services/svc.yml": "artifacts: [':svc', 'com.example:']\npipelines: [pipe]\n"},
			want: []config.Problem{
				{File: "services/svc.yml", Line: 1, Field: "artifacts[0]", Message: `artifact ":svc" must be group:name, with exactly one colon`},
				{File: "services/svc.yml", Line: 1, Field: "artifacts[1]", Message: `artifact "com.example:" must be group:name, with exactly one colon`},
			},
		},
		{
			name:  "ErrArtifactNotString",
			files: map[string]string{"services/svc.yml": "artifacts:\n  - com.example: svc\npipelines: [pipe]\n"},
			want:  []config.Problem{{File: "services/svc.yml", Line: 2, Field: "artifacts[0]", Message: "must be a string, not a mapping"}},
		},
		{
			name:  "ErrWrongType",
			files: map[string]string{"services/svc.yml": "pipelines: pipe\n"},
			want:  []config.Problem{{File: "services/svc.yml", Line: 1, Field: "pipelines", Message: "must be a list, not a string"}},
		},
		{
			name:  "ErrNotAMapping",
			files: map[string]string{"environments/integ.yml": "- integ\n"},
			want:  []config.Problem{{File: "environments/integ.yml", Line: 1, Message: "must be a mapping (key: value), not a list"}},
		},
		{
			name:  "ErrBothFailureStrategySpellings",
			files: map[string]string{"services/svc.yml": "pipelines: [pipe]\nfailureStrategy: notify\nfailure_strategy: rollback\n"},
			want:  []config.Problem{{File: "services/svc.yml", Line: 3, Field: "failure_strategy", Message: "set either failureStrategy or failure_strategy, not both"}},
		},
		{
			name:  "ErrStageFailureStrategy",
			files: map[string]string{"pipelines/pipe.yml": "environments:\n  integ:\n    failureStrategy: panic\n"},
			want:  []config.Problem{{File: "pipelines/pipe.yml", Line: 3, Field: "environments.integ.failureStrategy", Message: `unknown failure strategy "panic"; valid: notify, rollback, ignore`}},
		},
		{
			name:  "ErrStageUnknownKey",
			files: map[string]string{"pipelines/pipe.yml": "environments:\n  integ:\n    promotion: [smoke]\n"},
			want:  []config.Problem{{File: "pipelines/pipe.yml", Line: 3, Field: "environments.integ.promotion", Message: `unknown key "promotion"; valid keys: promotions, failureStrategy`}},
		},
		{
			name:  "ErrPipelineAsList",
			files: map[string]string{"pipelines/pipe.yml": "environments: [integ]\n"},
			want:  []config.Problem{{File: "pipelines/pipe.yml", Line: 1, Field: "environments", Message: "must be a mapping from each environment, in pipeline order, to its settings ({promotions: [...]}), not a list"}},
		},
		{
			name:  "ErrPipelineWithoutEnvironments",
			files: map[string]string{"pipelines/pipe.yml": "description: nothing\n"},
			want:  []config.Problem{{File: "pipelines/pipe.yml", Line: 1, Field: "environments", Message: "required: a pipeline has at least one environment"}},
		},
		{
			name:  "ErrPromotionWithoutType",
			files: map[string]string{"promotions/smoke.yml": "description: smoke\n"},
			want:  []config.Problem{{File: "promotions/smoke.yml", Line: 1, Field: "type", Message: "required: basic, manual or soak"}},
		},
		{
			name:  "ErrManualGroupNotString",
			files: map[string]string{"promotions/smoke.yml": "type: manual\nattributes:\n  allowedGroup: [a, b]\n"},
			want:  []config.Problem{{File: "promotions/smoke.yml", Line: 3, Field: "attributes.allowedGroup", Message: "must be a group name, a non-empty string"}},
		},
		{
			name:  "ErrSoakWithoutDuration",
			files: map[string]string{"promotions/smoke.yml": "type: soak\n"},
			want:  []config.Problem{{File: "promotions/smoke.yml", Line: 1, Field: "attributes.duration", Message: `required for a soak promotion: how long the deployment must stay completed, such as "30m"`}},
		},
		{
			name:  "ErrSoakNegativeDuration",
			files: map[string]string{"promotions/smoke.yml": "type: soak\nattributes: {duration: -5m}\n"},
			want:  []config.Problem{{File: "promotions/smoke.yml", Line: 2, Field: "attributes.duration", Message: `must be a positive duration such as "30m" or "2h"`}},
		},
		{
			name:  "ErrAttributeNotFinite",
			files: map[string]string{"promotions/smoke.yml": "type: basic\nattributes:\n  threshold: .inf\n"},
			want:  []config.Problem{{File: "promotions/smoke.yml", Line: 3, Field: "attributes.threshold", Message: "must be a finite number"}},
		},
		{
			name:  "ErrUnknownEventGroup",
			files: map[string]string{"environments/integ.yml": "webhook:\n  build:\n    created: [http://127.0.0.1/x]\n"},
			want:  []config.Problem{{File: "environments/integ.yml", Line: 2, Field: "webhook.build", Message: `unknown event group "build"; valid: ` + eventGroups() + ", or hooks: [...]"}},
		},
		{
			name:  "ErrUnknownDeploymentEvent",
			files: map[string]string{"webhook/hooks.yml": "deployment:\n  finished: [http://127.0.0.1/x]\n"},
			want:  []config.Problem{{File: "webhook/hooks.yml", Line: 2, Field: "deployment.finished", Message: `unknown event "deployment.finished"; valid: ` + eventsOf("deployment")}},
		},
		{
			name:  "ErrHookNotAList",
			files: map[string]string{"webhook/hooks.yml": "flow:\n  completed: http://127.0.0.1/x\n"},
			want:  []config.Problem{{File: "webhook/hooks.yml", Line: 2, Field: "flow.completed", Message: "must be a list, not a string"}},
		},
		{
			name:  "ErrHookWithoutHost",
			files: map[string]string{"webhook/hooks.yml": "flow:\n  completed: ['http:///path', /relative]\n"},
			want: []config.Problem{
				{File: "webhook/hooks.yml", Line: 2, Field: "flow.completed[0]", Message: `invalid URL "http:///path": must be an absolute http:// or https:// URL`},
				{File: "webhook/hooks.yml", Line: 2, Field: "flow.completed[1]", Message: `invalid URL "/relative": must be an absolute http:// or https:// URL`},
			},
		},
		{
			name:  "ErrHookPasswordRedacted",
			files: map[string]string{"webhook/hooks.yml": "flow:\n  completed: ['ftp://user:hunter2@example.com/']\n"},
			want:  []config.Problem{{File: "webhook/hooks.yml", Line: 2, Field: "flow.completed[0]", Message: `invalid URL "ftp://user:xxxxx@example.com/": must be an absolute http:// or https:// URL`}},
		},
		{
			name:  "ErrEmptyReference",
			files: map[string]string{"services/svc.yml": "pipelines: [pipe]\npromotions: ['']\n"},
			want:  []config.Problem{{File: "services/svc.yml", Line: 2, Field: "promotions[0]", Message: "must name a promotion, not be empty"}},
		},
		{
			name: "ErrEveryProblemOfAFile",
			files: map[string]string{"services/svc.yml": "" +
				"descripton: typo\n" +
				"artifacts: [nocolon]\n" +
				"pipelines: [nope]\n" +
				"failure_strategy: sometimes\n"},
			want: []config.Problem{
				{File: "services/svc.yml", Line: 1, Field: "descripton", Message: `unknown key "descripton"; valid keys: description, artifacts, pipelines, promotions, failureStrategy`},
				{File: "services/svc.yml", Line: 2, Field: "artifacts[0]", Message: `artifact "nocolon" must be group:name, with exactly one colon`},
				{File: "services/svc.yml", Line: 3, Field: "pipelines[0]", Message: `unknown pipeline "nope"`},
				{File: "services/svc.yml", Line: 4, Field: "failure_strategy", Message: `unknown failure strategy "sometimes"; valid: notify, rollback, ignore`},
			},
		},
		{
			name:  "ErrYAMLSyntax",
			files: map[string]string{"promotions/smoke.yml": "type: basic\ndescription: 'unterminated\n"},
			want:  []config.Problem{{File: "promotions/smoke.yml", Line: 2, Message: "YAML syntax error: could not find end character of single-quoted text"}},
		},
		{
			name:  "ErrDuplicateKey",
			files: map[string]string{"promotions/smoke.yml": "type: basic\ntype: manual\n"},
			want:  []config.Problem{{File: "promotions/smoke.yml", Line: 2, Message: `YAML syntax error: mapping key "type" already defined at [1:1]`}},
		},
		{
			name:  "ErrTwoDocuments",
			files: map[string]string{"promotions/smoke.yml": "type: basic\n---\ntype: manual\n"},
			want:  []config.Problem{{File: "promotions/smoke.yml", Line: 2, Message: "a file holds one YAML document, this one has 2"}},
		},
		{
			name:  "ErrUnknownAlias",
			files: map[string]string{"services/svc.yml": "pipelines: *nope\n"},
			want:  []config.Problem{{File: "services/svc.yml", Line: 1, Field: "pipelines", Message: "alias *nope refers to no anchor &nope defined before it"}},
		},
		{
			name:  "ErrRecursiveAttributes",
			files: map[string]string{"promotions/smoke.yml": "type: basic\nattributes: &a\n  self: *a\n"},
			want:  []config.Problem{{File: "promotions/smoke.yml", Line: 3, Field: "attributes.self" + strings.Repeat(".self", 32), Message: "nested more than 32 levels deep"}},
		},
		{
			name:  "ErrRecursiveMerge",
			files: map[string]string{"environments/integ.yml": "webhook: &w\n  <<: *w\n"},
			want:  []config.Problem{{File: "environments/integ.yml", Line: 2, Field: "webhook", Message: "merge keys nested more than 32 levels deep"}},
		},
		{
			name:  "ErrServiceNotAMapping",
			files: map[string]string{"services/svc.yml": "[pipe]\n"},
			want:  []config.Problem{{File: "services/svc.yml", Line: 1, Message: "must be a mapping (key: value), not a list"}},
		},
		{
			name:  "ErrTooManyTokens",
			files: map[string]string{"environments/integ.yml": manyKeys(0, 4000)},
			want:  []config.Problem{{File: "environments/integ.yml", Line: 3334, Message: "more than 10000 YAML tokens: too large for a configuration file"}},
		},
		{
			name:  "ErrTooManyProblems",
			files: map[string]string{"environments/integ.yml": manyKeys(1, 60)},
			want: func() []config.Problem {
				var want []config.Problem
				for i := 1; i <= 50; i++ {
					key := fmt.Sprintf("k%d", i)
					want = append(want, config.Problem{File: "environments/integ.yml", Line: i, Field: key, Message: fmt.Sprintf("unknown key %q; valid keys: description, webhook, production, freezes", key)})
				}
				return append(want, config.Problem{File: "environments/integ.yml", Line: 50, Message: "10 more problems in this file are not shown"})
			}(),
		},
		{
			name:  "ErrDeepNesting",
			files: map[string]string{"promotions/smoke.yml": "type: basic\nattributes: {x: " + strings.Repeat("[", 100000) + "}\n"},
			want:  []config.Problem{{File: "promotions/smoke.yml", Line: 2, Message: "nested more than 64 levels deep"}},
		},
		{
			name:  "ErrDeepIndentation",
			files: map[string]string{"promotions/smoke.yml": "type: basic\nattributes:\n  x: " + strings.Repeat("- ", 100000) + "a\n"},
			want:  []config.Problem{{File: "promotions/smoke.yml", Line: 3, Message: "indented more than 256 columns"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := mustProblems(t, mustWriteDir(t, with(tt.files)), noEnv)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoad_Directory(t *testing.T) {
	t.Parallel()
	t.Run("ErrMissing", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "nope")
		got := mustProblems(t, dir, noEnv)
		want := []config.Problem{{Message: "configuration directory " + dir + ": does not exist"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("ErrNotADirectory", func(t *testing.T) {
		t.Parallel()
		dir := mustWriteDir(t, map[string]string{"file": "x"})
		got := mustProblems(t, filepath.Join(dir, "file"), noEnv)
		if len(got) != 1 || !strings.HasSuffix(got[0].Message, "not a directory") {
			t.Errorf("problems = %v, want not a directory", got)
		}
	})
	t.Run("OKEmpty", func(t *testing.T) {
		t.Parallel()
		cfg := mustLoad(t, t.TempDir())
		if len(cfg.Services) != 0 || cfg.Services == nil || cfg.Webhook == nil || len(cfg.Files) != 0 {
			t.Errorf("empty directory loaded as %+v", cfg)
		}
	})
	t.Run("OKIgnored", func(t *testing.T) {
		t.Parallel()
		dir := mustWriteDir(t, with(map[string]string{
			"auth/README.md":           "not yaml",
			"README.md":                "# config",
			".git/config":              "[core]",
			"services/.svc.yml.swp":    "binary \xff",
			"services/notes.txt":       "not yaml",
			"services/other.yaml":      "pipelines: [pipe]\n",
			"environments/prod.YML":    "production: true\n",
			"webhook/README":           "ignored",
			"promotions/old/smoke.yml": "type: nonsense",
		}))
		cfg := mustLoad(t, dir)
		if _, ok := cfg.Services["other"]; !ok {
			t.Errorf("services/other.yaml not loaded: %v", slices.Sorted(maps.Keys(cfg.Services)))
		}
		if !cfg.Environments["prod"].Production {
			t.Errorf("environments/prod.YML not loaded")
		}
		var paths []string
		for _, f := range cfg.Files {
			paths = append(paths, f.Path)
		}
		want := []string{"environments/integ.yml", "environments/prod.YML", "pipelines/pipe.yml", "promotions/smoke.yml", "services/other.yaml", "services/svc.yml"}
		if diff := cmp.Diff(want, paths); diff != "" {
			t.Errorf("files mismatch (-want +got):\n%s", diff)
		}
	})
	tests := []struct {
		name  string
		files map[string]string
		want  []config.Problem
	}{
		{
			name:  "ErrUnknownDirectory",
			files: map[string]string{"service/svc.yml": "pipelines: [pipe]\n"},
			want:  []config.Problem{{File: "service", Message: "unknown directory; valid: services, environments, pipelines, promotions, webhook, auth"}},
		},
		{
			name:  "ErrKindIsAFile",
			files: map[string]string{"webhook": "deployment: {}\n"},
			want:  []config.Problem{{File: "webhook", Message: "not a directory"}},
		},
		{
			name:  "ErrDuplicateIdent",
			files: map[string]string{"promotions/smoke.yaml": "type: basic\n"},
			want:  []config.Problem{{File: "promotions/smoke.yml", Message: `promotion "smoke" is also defined in promotions/smoke.yaml`}},
		},
		{
			name:  "ErrInvalidIdent",
			files: map[string]string{"environments/my env.yml": "description: x\n"},
			want:  []config.Problem{{File: "environments/my env.yml", Message: `invalid environment name "my env": a file name must be letters, digits, '.', '_' and '-' before .yml`}},
		},
		{
			name:  "ErrInvalidUTF8",
			files: map[string]string{"environments/integ.yml": "description: ok\n# caf\xe9\n"},
			want:  []config.Problem{{File: "environments/integ.yml", Line: 2, Message: "not valid UTF-8"}},
		},
		{
			name:  "ErrTooLarge",
			files: map[string]string{"environments/integ.yml": "description: " + strings.Repeat("x", 1<<20) + "\n"},
			want:  []config.Problem{{File: "environments/integ.yml", Message: "larger than 1048576 bytes: not a configuration file"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := mustProblems(t, mustWriteDir(t, with(tt.files)), noEnv)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("ErrNotARegularFile", func(t *testing.T) {
		t.Parallel()
		dir := mustWriteDir(t, baseFiles())
		if err := os.Mkdir(filepath.Join(dir, "promotions", "dir.yml"), 0o755); err != nil {
			t.Fatal(err)
		}
		got := mustProblems(t, dir, noEnv)
		want := []config.Problem{{File: "promotions/dir.yml", Message: "not a regular file"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestLoad_Normalisation(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, with(map[string]string{
		"services/svc.yml":     "\ufeffpipelines: [pipe]\n",
		"services/stop.yml":    "pipelines: [pipe]\nfailure_strategy: Stop\n",
		"services/rb.yml":      "%YAML 1.2\n---\npipelines: [pipe]\nfailureStrategy: ROLLBACK\n",
		"environments/e2.yml":  "# nothing but a comment\n",
		"promotions/smoke.yml": "type: deploydb.models.promotion.BasicPromotionImpl\n",
		"promotions/ldap.yml":  "type: com.example.ManualLDAPPromotionImpl\nattributes: {allowedGroup: ops}\n",
		"promotions/soak.yml":  "type: Soak\nattributes:\n  duration: 1h30m\n  note: |\n    two\n    lines\n  limits: {max: 3, ratio: 0.5, on: true, none: null}\n",
		"pipelines/pipe.yml":   "environments:\n  integ:\n    failure_strategy: ignore\n  e2: {}\n",
	}))
	cfg := mustLoad(t, dir)

	strategies := map[string]deploydb.FailureStrategy{}
	for id, s := range cfg.Services {
		strategies[id] = s.FailureStrategy
	}
	wantStrategies := map[string]deploydb.FailureStrategy{"svc": deploydb.FailureNotify, "stop": deploydb.FailureNotify, "rb": deploydb.FailureRollback}
	if diff := cmp.Diff(wantStrategies, strategies); diff != "" {
		t.Errorf("failure strategies mismatch (-want +got):\n%s", diff)
	}
	wantSvc := &deploydb.Service{Ident: "svc", Artifacts: []string{}, Pipelines: []string{"pipe"}, Promotions: []string{}, FailureStrategy: deploydb.FailureNotify}
	if diff := cmp.Diff(wantSvc, cfg.Services["svc"]); diff != "" {
		t.Errorf("service with defaults mismatch (-want +got):\n%s", diff)
	}
	wantStages := []deploydb.PipelineStage{
		{Environment: "integ", Promotions: []string{}, FailureStrategy: deploydb.FailureIgnore},
		{Environment: "e2", Promotions: []string{}},
	}
	if diff := cmp.Diff(wantStages, cfg.Pipelines["pipe"].Environments); diff != "" {
		t.Errorf("stages mismatch (-want +got):\n%s", diff)
	}
	wantEnv := &deploydb.Environment{Ident: "e2", Webhook: deploydb.Webhook{}, Freezes: []deploydb.Freeze{}}
	if diff := cmp.Diff(wantEnv, cfg.Environments["e2"]); diff != "" {
		t.Errorf("empty environment mismatch (-want +got):\n%s", diff)
	}
	wantPromotions := map[string]*deploydb.Promotion{
		"smoke": {Ident: "smoke", Type: deploydb.PromotionTypeBasic, Attributes: map[string]any{}},
		"ldap":  {Ident: "ldap", Type: deploydb.PromotionTypeManual, Attributes: map[string]any{"allowedGroup": "ops"}},
		"soak": {Ident: "soak", Type: deploydb.PromotionTypeSoak, Attributes: map[string]any{
			"duration": "1h30m",
			"note":     "two\nlines\n",
			"limits":   map[string]any{"max": uint64(3), "ratio": 0.5, "on": true, "none": nil},
		}},
	}
	if diff := cmp.Diff(wantPromotions, cfg.Promotions); diff != "" {
		t.Errorf("promotions mismatch (-want +got):\n%s", diff)
	}
}

func TestLoad_PipelineOrder(t *testing.T) {
	t.Parallel()
	// Neither alphabetical nor the order of the environment files.
	order := []string{"zulu", "alpha", "mike", "bravo", "yankee"}
	files := with(nil)
	var b strings.Builder
	b.WriteString("environments:\n")
	for _, env := range order {
		files["environments/"+env+".yml"] = "description: " + env + "\n"
		fmt.Fprintf(&b, "  %s:\n", env)
	}
	files["pipelines/pipe.yml"] = b.String()
	cfg := mustLoad(t, mustWriteDir(t, files))

	var got []string
	for _, s := range cfg.Pipelines["pipe"].Environments {
		got = append(got, s.Environment)
	}
	if diff := cmp.Diff(order, got); diff != "" {
		t.Errorf("pipeline order mismatch (-want +got):\n%s", diff)
	}
}

func TestLoad_Aliases(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, with(map[string]string{
		"webhook/hooks.yml": "" +
			"deployment:\n" +
			"  created: &both\n" +
			"    - http://127.0.0.1/a\n" +
			"    - http://127.0.0.1/b\n" +
			"  failed: *both\n",
		"promotions/soak.yml": "" +
			"type: soak\n" +
			"attributes:\n" +
			"  <<: &defaults {duration: 10m, team: ops}\n" +
			"  duration: 1h\n",
	}))
	cfg := mustLoad(t, dir)
	want := hooks("http://127.0.0.1/a", "http://127.0.0.1/b")
	for _, e := range []deploydb.EventType{deploydb.EventDeploymentCreated, deploydb.EventDeploymentFailed} {
		if diff := cmp.Diff(want, cfg.Webhook[e]); diff != "" {
			t.Errorf("hooks of %s mismatch (-want +got):\n%s", e, diff)
		}
	}
	wantAttrs := map[string]any{"duration": "1h", "team": "ops"}
	if diff := cmp.Diff(wantAttrs, cfg.Promotions["soak"].Attributes); diff != "" {
		t.Errorf("merged attributes mismatch (-want +got):\n%s", diff)
	}
}

func TestLoad_GlobalWebhooksMerged(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, with(map[string]string{
		"webhook/b.yml":  "deployment:\n  created: [http://127.0.0.1/b1]\n",
		"webhook/a.yaml": "deployment:\n  created: [http://127.0.0.1/a1, http://127.0.0.1/a2]\nflow:\n  completed: [https://example.com/done]\n",
		"webhook/c.yml":  "# nothing yet\n",
	}))
	cfg := mustLoad(t, dir)
	want := deploydb.Webhook{
		deploydb.EventDeploymentCreated: hooks("http://127.0.0.1/a1", "http://127.0.0.1/a2", "http://127.0.0.1/b1"),
		deploydb.EventFlowCompleted:     hooks("https://example.com/done"),
	}
	if diff := cmp.Diff(want, cfg.Webhook); diff != "" {
		t.Errorf("global webhooks mismatch (-want +got):\n%s", diff)
	}
}

func TestLoad_SharedArtifact(t *testing.T) {
	t.Parallel()
	// Two services consuming the same artifact: one flow each.
	dir := mustWriteDir(t, with(map[string]string{
		"services/other.yml": "artifacts: [com.example:svc]\npipelines: [pipe]\n",
	}))
	cfg := mustLoad(t, dir)
	var got []string
	for _, s := range cfg.ServicesConsuming("com.example", "svc") {
		got = append(got, s.Ident)
	}
	if diff := cmp.Diff([]string{"other", "svc"}, got); diff != "" {
		t.Errorf("consumers mismatch (-want +got):\n%s", diff)
	}
}

func TestLoad_Env(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HOOK_HOST": "jenkins.example.com:8443", "TOKEN": "s3cret", "TEAM": "ops"}
	getenv := func(name string) string { return env[name] }

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		dir := mustWriteDir(t, with(map[string]string{
			"environments/integ.yml": "" +
				"description: integ of ${env:TEAM}\n" +
				"webhook:\n" +
				"  deployment:\n" +
				"    created:\n" +
				"      - https://${env:HOOK_HOST}/job/deploy?token=${env:TOKEN}\n",
			"promotions/approve.yml": "type: manual\nattributes:\n  allowedGroup: ${env:TEAM}\n  plain: $HOME {env:TEAM} $${env\n",
		}))
		cfg, err := config.LoadWith(dir, config.Options{Getenv: getenv})
		if err != nil {
			t.Fatal(err)
		}
		integ := cfg.Environments["integ"]
		if integ.Description != "integ of ops" {
			t.Errorf("description = %q, want expanded", integ.Description)
		}
		// The API shows the URL as written, never the expanded secret.
		want := []deploydb.Hook{{Name: "https://${env:HOOK_HOST}/job/deploy?token=${env:TOKEN}", URL: "https://jenkins.example.com:8443/job/deploy?token=s3cret", Display: "https://${env:HOOK_HOST}/job/deploy?token=${env:TOKEN}"}}
		if diff := cmp.Diff(want, integ.Webhook[deploydb.EventDeploymentCreated]); diff != "" {
			t.Errorf("hooks mismatch (-want +got):\n%s", diff)
		}
		shown, err := json.Marshal(integ.Webhook)
		if err != nil || strings.Contains(string(shown), "s3cret") || !strings.Contains(string(shown), "${env:TOKEN}") {
			t.Errorf("webhook JSON = %s, %v; want the URL as written", shown, err)
		}
		wantAttrs := map[string]any{"allowedGroup": "ops", "plain": "$HOME {env:TEAM} $${env"}
		if diff := cmp.Diff(wantAttrs, cfg.Promotions["approve"].Attributes); diff != "" {
			t.Errorf("attributes mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("ErrMissingVariable", func(t *testing.T) {
		t.Parallel()
		dir := mustWriteDir(t, with(map[string]string{
			"environments/integ.yml": "" +
				"webhook:\n" +
				"  deployment:\n" +
				"    failed:\n" +
				"      - https://${env:HOOK_HOST}/job/${env:JOB}?token=${env:SECRET}\n",
			"promotions/approve.yml": "type: manual\nattributes: {allowedGroup: '${env:team}'}\n",
			"services/svc.yml":       "description: ${env:TEAM\npipelines: [pipe]\n",
		}))
		got := mustProblems(t, dir, getenv)
		want := []config.Problem{
			{File: "environments/integ.yml", Line: 4, Field: "webhook.deployment.failed[0]", Message: "environment variable JOB is not set (used as ${env:JOB})"},
			{File: "environments/integ.yml", Line: 4, Field: "webhook.deployment.failed[0]", Message: "environment variable SECRET is not set (used as ${env:SECRET})"},
			{File: "promotions/approve.yml", Line: 2, Field: "attributes.allowedGroup", Message: "environment variable team is not set (used as ${env:team})"},
			{File: "services/svc.yml", Line: 1, Field: "description", Message: `unterminated "${env:": write ${env:NAME}`},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("ErrSecretNotShown", func(t *testing.T) {
		t.Parallel()
		dir := mustWriteDir(t, with(map[string]string{
			"webhook/hooks.yml": "deployment:\n  created: ['${env:TOKEN}']\n",
			"services/svc.yml":  "pipelines: ['${env:TOKEN}']\n",
		}))
		cfg, err := config.LoadWith(dir, config.Options{Getenv: getenv})
		if err == nil {
			t.Fatalf("Load = %+v, want an error", cfg)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the expanded secret:\n%v", err)
		}
		want := []config.Problem{
			{File: "services/svc.yml", Line: 1, Field: "pipelines[0]", Message: `unknown pipeline "${env:TOKEN}" (expanded)`},
			{File: "webhook/hooks.yml", Line: 2, Field: "deployment.created[0]", Message: `invalid URL "${env:TOKEN}" (expanded): must be an absolute http:// or https:// URL`},
		}
		var cerr *config.Error
		if !errors.As(err, &cerr) {
			t.Fatalf("error %T is not a *config.Error", err)
		}
		if diff := cmp.Diff(want, cerr.Problems); diff != "" {
			t.Errorf("problems mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestLoad_ProcessEnvironment checks that Load expands from the process
// environment. It changes the environment, so it does not run in parallel.
func TestLoad_ProcessEnvironment(t *testing.T) {
	t.Setenv("DEPLOYDB_CONFIG_TEST_GROUP", "release-managers")
	dir := mustWriteDir(t, with(map[string]string{
		"promotions/approve.yml": "type: manual\nattributes: {allowedGroup: '${env:DEPLOYDB_CONFIG_TEST_GROUP}'}\n",
	}))
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Promotions["approve"].Attributes["allowedGroup"]; got != "release-managers" {
		t.Errorf("allowedGroup = %v, want release-managers", got)
	}
}

func TestLoad_Checksum(t *testing.T) {
	t.Parallel()
	files := baseFiles()
	a := mustLoad(t, mustWriteDir(t, files))
	b := mustLoad(t, mustWriteDir(t, files))
	if a.Checksum != b.Checksum || len(a.Checksum) != 64 {
		t.Errorf("same files, checksums %q and %q", a.Checksum, b.Checksum)
	}
	files["environments/integ.yml"] = "description: Integration  \n"
	c := mustLoad(t, mustWriteDir(t, files))
	if c.Checksum == a.Checksum {
		t.Errorf("checksum did not change with the content of a file")
	}
	files = baseFiles()
	files["environments/integ2.yml"] = files["environments/integ.yml"]
	delete(files, "environments/integ.yml")
	files["pipelines/pipe.yml"] = strings.ReplaceAll(files["pipelines/pipe.yml"], "integ", "integ2")
	d := mustLoad(t, mustWriteDir(t, files))
	e := mustLoad(t, mustWriteDir(t, with(map[string]string{"pipelines/pipe.yml": files["pipelines/pipe.yml"], "environments/integ.yml": "", "environments/integ2.yml": files["environments/integ2.yml"]})))
	if d.Checksum != e.Checksum {
		t.Errorf("same files, checksums %q and %q", d.Checksum, e.Checksum)
	}
	if d.Checksum == a.Checksum {
		t.Errorf("checksum did not change with the name of a file")
	}
}

func TestError(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, with(map[string]string{
		"services/svc.yml":     "pipelines: [pipe]\npromotions:\n  - nope\n",
		"environments/b.yml":   "production: maybe\n",
		"environments/a.yml":   "webhook:\n  flow:\n    completed: [x]\n",
		"promotions/smoke.yml": "type: manual\n",
	}))
	_, err := config.LoadWith(dir, config.Options{Getenv: noEnv})
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}

	want := strings.Join([]string{
		`environments/a.yml:3: webhook.flow.completed[0]: invalid URL "x": must be an absolute http:// or https:// URL`,
		`environments/b.yml:1: production: must be true or false, not a string`,
		`promotions/smoke.yml:1: attributes.allowedGroup: required for a manual promotion: the group allowed to report its result`,
		`services/svc.yml:3: promotions[0]: unknown promotion "nope"`,
	}, "\n")
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("Error() mismatch (-want +got):\n%s", diff)
	}

	if code := deploydb.ErrorCode(err); code != deploydb.EINVALID {
		t.Errorf("ErrorCode = %q, want %q", code, deploydb.EINVALID)
	}
	var derr *deploydb.Error
	if !errors.As(err, &derr) {
		t.Fatalf("errors.As(*deploydb.Error) failed on %T", err)
	}
	wantErr := &deploydb.Error{
		Code:    deploydb.EINVALID,
		Message: "invalid configuration: 4 problems",
		Fields: []deploydb.FieldError{
			{Field: "environments/a.yml:3: webhook.flow.completed[0]", Message: `invalid URL "x": must be an absolute http:// or https:// URL`},
			{Field: "environments/b.yml:1: production", Message: "must be true or false, not a string"},
			{Field: "promotions/smoke.yml:1: attributes.allowedGroup", Message: "required for a manual promotion: the group allowed to report its result"},
			{Field: "services/svc.yml:3: promotions[0]", Message: `unknown promotion "nope"`},
		},
	}
	if diff := cmp.Diff(wantErr, derr); diff != "" {
		t.Errorf("deploydb.Error mismatch (-want +got):\n%s", diff)
	}
}

func TestProblem_String(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    config.Problem
		want string
	}{
		{"OK", config.Problem{File: "services/a.yml", Line: 3, Field: "pipelines[0]", Message: "m"}, "services/a.yml:3: pipelines[0]: m"},
		{"OKNoField", config.Problem{File: "services/a.yml", Line: 3, Message: "m"}, "services/a.yml:3: m"},
		{"OKWholeFile", config.Problem{File: "services/a.yml", Message: "m"}, "services/a.yml: m"},
		{"OKDirectory", config.Problem{Message: "m"}, "m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.p.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoad_HookPasswordNotShown(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, with(map[string]string{
		"webhook/hooks.yml": "deployment:\n  created:\n    - https://deploy:hunter2@rundeck.example.com/api/run\n",
	}))
	cfg := mustLoad(t, dir)
	h := cfg.Webhook[deploydb.EventDeploymentCreated][0]
	if h.URL != "https://deploy:hunter2@rundeck.example.com/api/run" {
		t.Errorf("URL = %q, want the password kept for delivery", h.URL)
	}
	shown, _ := json.Marshal(cfg.Webhook)
	if strings.Contains(string(shown), "hunter2") {
		t.Errorf("webhook JSON shows the password: %s", shown)
	}
}
