package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
)

// Sim is the demo's simulated CI, orchestrator, test jobs and release
// manager, driving a server through its HTTP API.
type Sim struct {
	// URL is the server's.
	URL    string
	Tokens Tokens
	Logger *slog.Logger
	// Orchestrator listens for the orchestrator hook's calls (Listen):
	// Run serves it.
	Orchestrator net.Listener
	// Every is about how often CI publishes a new version (±50 %).
	// Zero means 6 seconds.
	Every time.Duration
	// Pace scales every pause of the simulation (a deployment's steps,
	// the tests); zero means 1. Tests make it small.
	Pace float64
	// FailureRate is the share of deployments and smoke tests that fail;
	// negative means none, zero means 8 %.
	FailureRate float64
	// ApproveAfter is how long the release bot leaves an approval to
	// people; zero means 30 seconds.
	ApproveAfter time.Duration

	mu       sync.Mutex
	rng      *rand.Rand
	versions map[string][3]int
}

// Listen opens the listener of the orchestrator's calls on a free
// loopback port; the URL to give the hook (EnvOrchestrator) is
// "http://" + its address.
func Listen(ctx context.Context) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", "127.0.0.1:0")
}

// Run drives the server until ctx is done: CI publishes a new version of
// a service every few seconds; the orchestrator, called by the server's
// webhook for each deployment, starts it and completes it (or fails it);
// the test jobs run the smoke tests of each completed deployment and
// report them; the release bot approves the approvals people left for
// ApproveAfter. Failures and rollbacks happen on their own.
func (s *Sim) Run(ctx context.Context) error {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Every == 0 {
		s.Every = 6 * time.Second
	}
	if s.Pace == 0 {
		s.Pace = 1
	}
	if s.FailureRate == 0 {
		s.FailureRate = 0.08
	}
	if s.ApproveAfter == 0 {
		s.ApproveAfter = 30 * time.Second
	}
	s.rng = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	s.versions = map[string][3]int{}
	as := func(name string) (*client.Client, error) {
		return client.New(s.URL, client.WithToken(s.Tokens[name]), client.WithUserAgent("deploydb-demo/"+name))
	}
	ci, err := as(CI)
	if err != nil {
		return err
	}
	orch, err := as(Orchestrator)
	if err != nil {
		return err
	}
	tests, err := as(Tests)
	if err != nil {
		return err
	}
	bot, err := as(ReleaseBot)
	if err != nil {
		return err
	}
	// bg runs the orchestrator's server and the release bot; work runs
	// the deployments the orchestrator was told of. On the way out the
	// server is shut down first (it waits for its handlers, which start
	// the work), then the work is waited for.
	var bg, work sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /deploy", func(w http.ResponseWriter, r *http.Request) {
		var call struct {
			Deployment  int64  `json:"deployment"`
			Service     string `json:"service"`
			Environment string `json:"environment"`
			Version     string `json:"version"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&call); err != nil || call.Deployment == 0 {
			http.Error(w, "want {deployment, service, environment, version}", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		work.Add(1)
		go func() {
			defer work.Done()
			s.deploy(ctx, orch, tests, call.Deployment)
		}()
	})
	mux.HandleFunc("GET /reports/{deployment}/{promotion}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Demo test report: %s of deployment %s.\nA real test job links its own report here (infoUrl).\n", r.PathValue("promotion"), r.PathValue("deployment"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	bg.Add(1)
	go func() {
		defer bg.Done()
		if err := srv.Serve(s.Orchestrator); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("demo: orchestrator stopped", "err", err)
		}
	}()
	defer func() {
		cancel()
		sctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		stop()
		bg.Wait()
		work.Wait()
	}()
	bg.Add(1)
	go func() {
		defer bg.Done()
		s.releaseBot(ctx, bot)
	}()

	services, err := ci.Services(ctx)
	if err != nil {
		return fmt.Errorf("demo: list the services: %w", err)
	}
	for {
		for _, svc := range shuffled(s, services) {
			if err := s.publish(ctx, ci, svc.Ident); err != nil && ctx.Err() == nil {
				s.Logger.Warn("demo: CI could not publish", "service", svc.Ident, "err", err)
			}
			if !s.sleep(ctx, s.jitter(s.Every)) {
				return nil
			}
		}
	}
}

// shuffled returns the services in a random order.
func shuffled(s *Sim, services []*deploydb.Service) []*deploydb.Service {
	out := append([]*deploydb.Service(nil), services...)
	s.mu.Lock()
	s.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	s.mu.Unlock()
	return out
}

// publish publishes the next version of service as CI.
func (s *Sim) publish(ctx context.Context, ci *client.Client, service string) error {
	s.mu.Lock()
	v := s.versions[service]
	if v == [3]int{} {
		v = [3]int{1, s.rng.IntN(5), 0}
	}
	if s.rng.IntN(4) == 0 {
		v[2]++
	} else {
		v[1], v[2] = v[1]+1, 0
	}
	s.versions[service] = v
	// The commits the version brings: one to four, made in the last
	// hour or so, which lead times are measured from.
	now := time.Now()
	commits := make([]deploydb.Commit, 1+s.rng.IntN(4))
	for i := range commits {
		commits[i] = deploydb.Commit{SHA: fmt.Sprintf("%016x%016x%08x", s.rng.Uint64(), s.rng.Uint64(), s.rng.Uint32()),
			Timestamp: deploydb.NewTime(now.Add(-time.Duration(5+s.rng.IntN(90)) * time.Minute))}
	}
	s.mu.Unlock()
	version := fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2])
	_, err := ci.PublishArtifact(ctx, deploydb.Artifact{Group: "com.example", Name: service, Version: version,
		SourceURL: "https://ci.example.invalid/" + service + "/" + version + "/" + service + "-" + version + ".tar.gz", Commits: commits})
	if err != nil {
		var de *deploydb.Error
		if errors.As(err, &de) && de.Code == deploydb.ECONFLICT {
			return nil // published before this run: the next one
		}
		return err
	}
	s.Logger.Info("demo: CI published", "service", service, "version", version)
	return nil
}

// deploy makes deployment id as the orchestrator does: started after a
// moment, then completed or (now and then) failed; then the smoke tests.
func (s *Sim) deploy(ctx context.Context, orch, tests *client.Client, id int64) {
	if !s.sleep(ctx, s.pause(1, 2)) {
		return
	}
	if _, err := orch.ReportDeployment(ctx, id, deploydb.DeploymentStarted); err != nil {
		s.logReport("started", id, err)
		return
	}
	if !s.sleep(ctx, s.pause(2, 5)) {
		return
	}
	status := deploydb.DeploymentCompleted
	if s.fails() {
		status = deploydb.DeploymentFailed
	}
	d, err := orch.ReportDeployment(ctx, id, status)
	if err != nil {
		s.logReport(string(status), id, err)
		return
	}
	if status == deploydb.DeploymentFailed {
		return
	}
	for _, p := range d.Promotions {
		if p.Type != deploydb.PromotionTypeBasic || p.Status == deploydb.PromotionSuccess || p.Status == deploydb.PromotionFailed {
			continue
		}
		if !s.sleep(ctx, s.pause(2, 4)) {
			return
		}
		result := deploydb.PromotionSuccess
		if s.fails() {
			result = deploydb.PromotionFailed
		}
		_, err := tests.ReportPromotion(ctx, deploydb.PromotionReport{Deployment: id, Promotion: p.Promotion, Status: result,
			InfoURL: "http://" + s.Orchestrator.Addr().String() + "/reports/" + strconv.FormatInt(id, 10) + "/" + p.Promotion})
		if err != nil {
			s.logReport("promotion "+p.Promotion, id, err)
			return
		}
	}
}

// logReport logs a report the server refused: most often a deployment
// superseded or cancelled meanwhile, as happens for real.
func (s *Sim) logReport(what string, id int64, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.Logger.Info("demo: a report was refused", "report", what, "deployment", id, "err", err)
}

// releaseBot approves, as the release manager, what waits for approval
// longer than ApproveAfter.
func (s *Sim) releaseBot(ctx context.Context, bot *client.Client) {
	for s.sleep(ctx, s.pause(2, 3)) {
		ds, err := bot.Deployments(ctx, deploydb.DeploymentFilter{Status: deploydb.DeploymentCompleted, Page: deploydb.Page{Size: 100}})
		if err != nil {
			continue
		}
		for _, d := range ds {
			if time.Since(d.UpdatedAt.Time) < s.ApproveAfter {
				continue
			}
			for _, p := range d.Promotions {
				if p.Type != deploydb.PromotionTypeManual || p.Status == deploydb.PromotionSuccess || p.Status == deploydb.PromotionFailed {
					continue
				}
				if _, err := bot.ReportPromotion(ctx, deploydb.PromotionReport{Deployment: d.ID, Promotion: p.Promotion, Status: deploydb.PromotionSuccess}); err != nil {
					s.logReport("approval "+p.Promotion, d.ID, err)
				}
			}
		}
	}
}

// fails draws whether a step fails.
func (s *Sim) fails() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.FailureRate > 0 && s.rng.Float64() < s.FailureRate
}

// pause returns a pause of between lo and hi seconds, at Pace.
func (s *Sim) pause(lo, hi float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration((lo + s.rng.Float64()*(hi-lo)) * s.Pace * float64(time.Second))
}

// jitter returns d ± 50 %.
func (s *Sim) jitter(d time.Duration) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(float64(d) * (0.5 + s.rng.Float64()))
}

// sleep waits d, or until ctx is done; it reports whether ctx is not.
func (s *Sim) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
