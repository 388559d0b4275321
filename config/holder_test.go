package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
)

// clock is a settable time for the load times a Holder records.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func writeFile(tb testing.TB, dir, name, content string) {
	tb.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestHolder(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, with(map[string]string{
		"webhook/hooks.yml": "flow:\n  completed: ['https://hooks.example.com/x?token=${env:TOKEN}']\n",
	}))
	getenv := func(k string) string { return map[string]string{"TOKEN": "s3cr3t-value"}[k] }
	clk := &clock{t: time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)}
	logs := &syncBuffer{}
	h, err := config.NewHolder(dir, config.HolderOptions{
		Options: config.Options{Getenv: getenv},
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),
		Now:     clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	first := h.Current()
	if first.Services["svc"] == nil || first.Webhook[deploydb.EventFlowCompleted][0].URL != "https://hooks.example.com/x?token=s3cr3t-value" {
		t.Fatalf("Current() = %+v, want the directory loaded with ${env:TOKEN} expanded", first)
	}
	st := h.Status()
	t0 := deploydb.NewTime(clk.Now())
	if st.Checksum != first.Checksum || st.Dir != first.Dir || len(st.Files) != len(first.Files) || st.LoadedAt != t0 || st.LastAttemptAt != t0 || st.LastError != "" {
		t.Fatalf("Status() = %+v, want the loaded config at %s and no error", st, t0)
	}
	changed := h.Changed()
	reloads := func(wantOK, wantFailed int64) {
		t.Helper()
		if ok, failed := h.Reloads(); ok != wantOK || failed != wantFailed {
			t.Errorf("Reloads() = %d ok, %d failed; want %d, %d", ok, failed, wantOK, wantFailed)
		}
	}
	reloads(0, 0)

	t.Run("ErrBrokenKeepsTheOld", func(t *testing.T) {
		writeFile(t, dir, "services/svc.yml", "pipelines: [nowhere]\nowner: me\n")
		clk.Set(clk.Now().Add(time.Minute))
		cfg, err := h.Reload()
		var cerr *config.Error
		if cfg != nil || !errors.As(err, &cerr) || deploydb.ErrorCode(err) != deploydb.EINVALID {
			t.Fatalf("Reload() = %v, %v; want nil and a *config.Error", cfg, err)
		}
		if len(cerr.Problems) != 2 {
			t.Fatalf("problems = %v, want both of services/svc.yml", cerr.Problems)
		}
		if h.Current() != first {
			t.Fatal("a broken config replaced the one in force")
		}
		if closed(changed) {
			t.Fatal("Changed() closed although the config in force did not change")
		}
		st := h.Status()
		want := "invalid configuration: 2 problems\n" +
			"services/svc.yml:1: pipelines[0]: unknown pipeline \"nowhere\"\n" +
			"services/svc.yml:2: owner: unknown key \"owner\"; valid keys: description, artifacts, pipelines, promotions, failureStrategy"
		if st.Checksum != first.Checksum || st.LoadedAt != t0 || st.LastAttemptAt != deploydb.NewTime(clk.Now()) || st.LastError != want {
			t.Fatalf("Status() = %+v\nwant checksum %s loaded at %s, attempted at %s, error\n%s", st, first.Checksum, t0, clk.Now(), want)
		}
		if !strings.Contains(logs.String(), `msg="config reload refused; the previous config keeps serving"`) ||
			!strings.Contains(logs.String(), `services/svc.yml:1: pipelines[0]: unknown pipeline \"nowhere\"`) {
			t.Errorf("log does not say the reload was refused, and why:\n%s", logs)
		}
		reloads(0, 1)
	})

	t.Run("OKReplaces", func(t *testing.T) {
		writeFile(t, dir, "services/svc.yml", "artifacts: [com.example:svc]\npipelines: [pipe]\ndescription: changed\n")
		clk.Set(clk.Now().Add(time.Minute))
		cfg, err := h.Reload()
		if err != nil {
			t.Fatal(err)
		}
		if h.Current() != cfg || cfg.Services["svc"].Description != "changed" || cfg.Checksum == first.Checksum {
			t.Fatalf("Current() = %+v after a good reload, want the new config", h.Current())
		}
		if !closed(changed) {
			t.Fatal("Changed() not closed when the config was replaced")
		}
		if closed(h.Changed()) {
			t.Fatal("Changed() of the new config is closed already")
		}
		now := deploydb.NewTime(clk.Now())
		if st := h.Status(); st.Checksum != cfg.Checksum || st.LoadedAt != now || st.LastAttemptAt != now || st.LastError != "" {
			t.Fatalf("Status() = %+v, want the new config loaded at %s and no error", st, now)
		}
		if !strings.Contains(logs.String(), `msg="config reloaded"`) || !strings.Contains(logs.String(), "checksum="+cfg.Checksum) {
			t.Errorf("log does not say the config was reloaded:\n%s", logs)
		}
		// The first config is untouched: flows that started under it
		// still read it as it was.
		if first.Services["svc"].Description != "" {
			t.Errorf("the old config changed: %+v", first.Services["svc"])
		}
		reloads(1, 1)
	})

	t.Run("OKNoSecretInStatus", func(t *testing.T) {
		b, err := json.Marshal(h.Status())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "s3cr3t") || strings.Contains(logs.String(), "s3cr3t") {
			t.Errorf("the expanded secret is shown: %s\n%s", b, logs)
		}
	})
}

func TestNewHolder_ErrBroken(t *testing.T) {
	t.Parallel()
	h, err := config.NewHolder(mustWriteDir(t, with(map[string]string{"services/svc.yml": "pipelines: [nowhere]\n"})), config.HolderOptions{Options: config.Options{Getenv: noEnv}})
	var cerr *config.Error
	if h != nil || !errors.As(err, &cerr) {
		t.Fatalf("NewHolder = %v, %v; want a *config.Error", h, err)
	}
}

// TestHolder_Concurrent reloads while readers read, for the race detector:
// every reader sees one whole config, old or new.
func TestHolder_Concurrent(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, baseFiles())
	h, err := config.NewHolder(dir, config.HolderOptions{Options: config.Options{Getenv: noEnv}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cfg := h.Current()
				if cfg.Services["svc"] == nil || h.Status().Checksum == "" {
					t.Error("a reader saw a config without its service")
					return
				}
			}
		}()
	}
	var reloads sync.WaitGroup
	for i := range 8 {
		reloads.Add(1)
		go func() {
			defer reloads.Done()
			if _, err := h.Reload(); err != nil {
				t.Errorf("reload %d: %v", i, err)
			}
		}()
	}
	reloads.Wait()
	close(stop)
	wg.Wait()
	if ok, failed := h.Reloads(); ok != 8 || failed != 0 {
		t.Errorf("Reloads() = %d ok, %d failed after 8 good reloads", ok, failed)
	}
}
