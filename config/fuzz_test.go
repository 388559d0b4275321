package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
)

// fuzzEnv is the environment fuzzed files may reference.
func fuzzEnv(name string) string {
	if name == "SET" {
		return "value"
	}
	return ""
}

// mustLoadFuzzed writes content as file into a copy of baseFiles, loads it,
// and checks what must hold for any content: no panic, either a config or an
// *Error whose problems all concern the fuzzed file (the base is valid).
func mustLoadFuzzed(t *testing.T, file string, content []byte) *deploydb.Config {
	t.Helper()
	dir := mustWriteDir(t, baseFiles())
	p := filepath.Join(dir, filepath.FromSlash(file))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadWith(dir, config.Options{Getenv: fuzzEnv})
	if err == nil {
		if cfg == nil || len(cfg.Checksum) != 64 {
			t.Fatalf("Load succeeded with config %+v", cfg)
		}
		return cfg
	}
	var cerr *config.Error
	if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
		t.Fatalf("Load error %T without problems: %v", err, err)
	}
	if deploydb.ErrorCode(err) != deploydb.EINVALID {
		t.Fatalf("Load error code %q, want %q", deploydb.ErrorCode(err), deploydb.EINVALID)
	}
	for _, pr := range cerr.Problems {
		if pr.File != file || pr.Message == "" {
			t.Fatalf("problem %q is not about %s", pr, file)
		}
	}
	return nil
}

func FuzzLoadService(f *testing.F) {
	for _, seed := range []string{
		"description: \"Basic Service\"\nartifacts:\n  - basic.group.1:bg1\n  - basic.group.2:bg2\npipelines:\n  - pipe\npromotions:\n  - smoke\n",
		"artifacts: [a:b]\npipelines: [pipe]\nfailure_strategy: Stop\n",
		"description: ${env:SET} ${env:UNSET}\npipelines: &p [pipe]\npromotions: *p\n",
		"pipelines: [pipe\n",
		"<<: {pipelines: [pipe]}\nartifacts: [x:y, x:y, 'a b:c']\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		cfg := mustLoadFuzzed(t, "services/fuzz.yml", content)
		if cfg == nil {
			return
		}
		s := cfg.Services["fuzz"]
		if s == nil || s.Ident != "fuzz" || s.Pipeline() != "pipe" || s.Artifacts == nil || s.Promotions == nil {
			t.Fatalf("loaded service %+v", s)
		}
		valid := []deploydb.FailureStrategy{deploydb.FailureNotify, deploydb.FailureRollback, deploydb.FailureIgnore}
		if !slices.Contains(valid, s.FailureStrategy) {
			t.Fatalf("failure strategy %q", s.FailureStrategy)
		}
	})
}

// FuzzLoadFile fuzzes the other kinds of file: which one is picked by kind.
func FuzzLoadFile(f *testing.F) {
	files := []string{"environments/fuzz.yml", "pipelines/fuzz.yml", "promotions/fuzz.yml", "webhook/fuzz.yml"}
	seeds := []struct {
		kind    uint8
		content string
	}{
		{0, "description: \"Basic Environment\"\nwebhook:\n  deployment:\n    created:\n      - http://localhost:10000/job/basicEnv-deploy-created/build\n"},
		{0, "production: true\nwebhook: {flow: {completed: ['https://${env:SET}/x']}}\n"},
		{0, "freezes:\n  - {reason: nights, timezone: Europe/Berlin, days: [mon, fri], from: '22:00', to: '06:00'}\n  - {reason: once, start: 2025-12-20T00:00:00Z, end: 2025-12-21T00:00:00+01:00}\n"},
		{0, "freezes: [{reason: x, days: [sun], from: 0:00, to: 24:00}, {reason: y, days: [xyz], from: 25:00}]\n"},
		{1, "description: \"Basic pipeline\"\nenvironments:\n     integ:\n       promotions:\n          - smoke\n"},
		{1, "environments: {integ: {failureStrategy: rollback}, nope: }\n"},
		{2, "type:  deploydb.models.promotion.ManualLDAPPromotionImpl\nattributes:\n    allowedGroup: ManualPromotionGroup\n"},
		{2, "type: soak\nattributes: {duration: 1h, list: [1, 2.5, true, ~, {a: b}]}\n"},
		{3, "deployment:\n  completed:\n     - http://localhost:10000/a\n     - http://localhost:10000/b\npromotion:\n  completed: []\n"},
	}
	for _, s := range seeds {
		f.Add(s.kind, []byte(s.content))
	}
	f.Fuzz(func(t *testing.T, kind uint8, content []byte) {
		file := files[int(kind)%len(files)]
		cfg := mustLoadFuzzed(t, file, content)
		if cfg == nil {
			return
		}
		for _, p := range cfg.Promotions {
			if p.Attributes == nil || p.Type == "" {
				t.Fatalf("loaded promotion %+v", p)
			}
		}
		for _, p := range cfg.Pipelines {
			if len(p.Environments) == 0 {
				t.Fatalf("loaded pipeline without environments %+v", p)
			}
		}
		for _, e := range cfg.Environments {
			for _, f := range e.Freezes {
				if f.Reason == "" || f.Weekly() && (f.Location == nil || len(f.Days) == 0) {
					t.Fatalf("loaded freeze %+v", f)
				}
			}
			// Answers, and ends, for any windows that load.
			at := time.Date(2025, 3, 30, 0, 30, 0, 0, time.UTC)
			e.FrozenAt(at)
			e.NextFreezeChange(at)
		}
	})
}
