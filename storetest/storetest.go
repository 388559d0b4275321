// Package storetest is the conformance suite of deploydb.Store. Every
// implementation (sqlite, postgres) runs the same suite against
// fresh stores of its own and must pass it unchanged:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, now func() time.Time) deploydb.Store {
//			s := openEmptyStore(t) // a new, empty database, closed by t.Cleanup
//			s.Now = now
//			return s
//		})
//	}
//
// The suite talks to the store through the Store interface only, builds its
// configuration in Go (Model) and controls the clock (Clock), so that every
// recorded time is known exactly and no test sleeps.
package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

// Opener returns a new, empty store for one subtest. The store must take
// every time it records (createdAt and updatedAt of its records, events and
// webhook deliveries) from now, which is safe for concurrent use. The opener
// closes the store with t.Cleanup. Subtests run in parallel, each with its
// own store, so stores of one opener must not share data.
type Opener func(t *testing.T, now func() time.Time) deploydb.Store

// Run runs the whole conformance suite, each subtest against a store from
// open.
func Run(t *testing.T, open Opener) {
	t.Run("PublishArtifact", func(t *testing.T) { testPublishArtifact(t, open) })
	t.Run("ReportDeployment", func(t *testing.T) { testReportDeployment(t, open) })
	t.Run("ReportPromotion", func(t *testing.T) { testReportPromotion(t, open) })
	t.Run("Events", func(t *testing.T) { testEvents(t, open) })
	t.Run("Webhooks", func(t *testing.T) { testWebhooks(t, open) })
	t.Run("FindArtifacts", func(t *testing.T) { testFindArtifacts(t, open) })
	t.Run("FindDeployments", func(t *testing.T) { testFindDeployments(t, open) })
	t.Run("FindFlows", func(t *testing.T) { testFindFlows(t, open) })
	t.Run("Empty", func(t *testing.T) { testEmpty(t, open) })
	t.Run("FindPromotionResult", func(t *testing.T) { testFindPromotionResult(t, open) })
	t.Run("Outbox", func(t *testing.T) { testOutbox(t, open) })
	t.Run("Claims", func(t *testing.T) { testClaims(t, open) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, open) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, open) })
	t.Run("Snapshot", func(t *testing.T) { testSnapshot(t, open) })
	t.Run("EventLog", func(t *testing.T) { testEventLog(t, open) })
	t.Run("Redeliver", func(t *testing.T) { testRedeliver(t, open) })
	t.Run("Coordination", func(t *testing.T) { testCoordination(t, open) })
	t.Run("FailureStrategy", func(t *testing.T) { testFailureStrategy(t, open) })
	t.Run("CancelFlow", func(t *testing.T) { testCancelFlow(t, open) })
	t.Run("RetryDeployment", func(t *testing.T) { testRetryDeployment(t, open) })
	t.Run("Rollback", func(t *testing.T) { testRollback(t, open) })
	t.Run("Hotfix", func(t *testing.T) { testHotfix(t, open) })
	t.Run("Locks", func(t *testing.T) { testLocks(t, open) })
	t.Run("Tick", func(t *testing.T) { testTick(t, open) })
	t.Run("FindStatus", func(t *testing.T) { testFindStatus(t, open) })
	t.Run("SyncEnvironments", func(t *testing.T) { testSyncEnvironments(t, open) })
	t.Run("Stats", func(t *testing.T) { testStats(t, open) })
	t.Run("History", func(t *testing.T) { testHistory(t, open) })
}

// start is the time the suite's clocks start at. It has a sub-millisecond
// part on purpose: stores record milliseconds (deploydb.Time), and what a
// write returns must equal what a read returns.
func start() time.Time { return time.Date(2026, time.March, 1, 10, 0, 0, 123456789, time.UTC) }

// Clock is a clock that moves only when told to. It is safe for concurrent
// use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Hook URLs of Model.
const (
	HookIntegA  = "http://integ-a.hooks.test/deploydb"
	HookIntegB  = "http://integ-b.hooks.test/deploydb"
	HookStaging = "http://staging.hooks.test/deploydb"
	HookProd    = "http://prod.hooks.test/deploy"
	HookGlobal  = "http://global.hooks.test/events"
)

// SoakTime is the duration of Model's soak promotion.
const SoakTime = 10 * time.Minute

// Group is the artifact group every service of Model consumes from.
const Group = "com.example"

// Model returns a small configuration, a new one on every call:
//
//   - promotions smoke (basic), approval (manual) and soak (soak, duration
//     SoakTime);
//   - environments integ (hooks HookIntegA and HookIntegB on every event),
//     staging (HookStaging on every event) and prod (HookProd on
//     deployment.created only); global hook HookGlobal on every event;
//   - pipeline standard: integ (no promotions), staging (smoke, approval),
//     prod (approval, failure strategy notify);
//   - services billing (consumes com.example:billing and com.example:shared,
//     promotions smoke), search (com.example:search and com.example:shared,
//     no promotions), batch (com.example:batch, failure strategy ignore),
//     ledger (com.example:ledger, no promotions, failure strategy rollback)
//     and cache (com.example:cache, promotions soak), all on pipeline
//     standard.
//
// Nothing consumes com.example:orphan.
func Model() *deploydb.Config {
	every := func(urls ...string) deploydb.Webhook {
		w := deploydb.Webhook{}
		for _, e := range deploydb.WebhookEvents {
			for _, u := range urls {
				w[e] = append(w[e], deploydb.Hook{Name: u, URL: u})
			}
		}
		return w
	}
	return &deploydb.Config{
		Checksum: "sha256:0123456789abcdef",
		Dir:      "storetest",
		Services: map[string]*deploydb.Service{
			"billing": {
				Ident: "billing", Description: "Billing",
				Artifacts:  []string{Group + ":billing", Group + ":shared"},
				Pipelines:  []string{"standard"},
				Promotions: []string{"smoke"},
			},
			"search": {
				Ident: "search", Description: "Search",
				Artifacts: []string{Group + ":search", Group + ":shared"},
				Pipelines: []string{"standard"},
			},
			"batch": {
				Ident: "batch", Description: "Batch jobs",
				Artifacts:       []string{Group + ":batch"},
				Pipelines:       []string{"standard"},
				FailureStrategy: deploydb.FailureIgnore,
			},
			"ledger": {
				Ident: "ledger", Description: "Ledger",
				Artifacts:       []string{Group + ":ledger"},
				Pipelines:       []string{"standard"},
				FailureStrategy: deploydb.FailureRollback,
			},
			"cache": {
				Ident: "cache", Description: "Cache",
				Artifacts:  []string{Group + ":cache"},
				Pipelines:  []string{"standard"},
				Promotions: []string{"soak"},
			},
		},
		Environments: map[string]*deploydb.Environment{
			"integ":   {Ident: "integ", Webhook: every(HookIntegA, HookIntegB)},
			"staging": {Ident: "staging", Webhook: every(HookStaging)},
			"prod": {Ident: "prod", Production: true, Webhook: deploydb.Webhook{
				deploydb.EventDeploymentCreated: {{Name: HookProd, URL: HookProd}},
			}},
		},
		Pipelines: map[string]*deploydb.Pipeline{
			"standard": {Ident: "standard", Environments: []deploydb.PipelineStage{
				{Environment: "integ"},
				{Environment: "staging", Promotions: []string{"smoke", "approval"}},
				{Environment: "prod", Promotions: []string{"approval"}, FailureStrategy: deploydb.FailureNotify},
			}},
		},
		Promotions: map[string]*deploydb.Promotion{
			"smoke":    {Ident: "smoke", Type: deploydb.PromotionTypeBasic},
			"approval": {Ident: "approval", Type: deploydb.PromotionTypeManual, Attributes: map[string]any{"allowedGroup": "release-managers"}},
			"soak":     {Ident: "soak", Type: deploydb.PromotionTypeSoak, Attributes: map[string]any{"duration": "10m"}},
		},
		Webhook: every(HookGlobal),
	}
}

// Artifact returns an artifact of Model's group with a source URL derived
// from name and version.
func Artifact(name, version string) deploydb.Artifact {
	return deploydb.Artifact{
		Group:     Group,
		Name:      name,
		Version:   version,
		SourceURL: "https://repo.example.com/com/example/" + name + "/" + version + "/" + name + "-" + version + ".jar",
	}
}
