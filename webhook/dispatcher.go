package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deploydb/deploydb"
)

// UserAgent is the User-Agent of every webhook call.
const UserAgent = "DeployDB-Webhook/1"

// ResponseSnippetLimit is how much of a receiver's response body an attempt
// records.
const ResponseSnippetLimit = 1024

const (
	// recordTimeout bounds recording an attempt; it is detached from Run's
	// context so that an attempt that finished is recorded even while the
	// dispatcher shuts down.
	recordTimeout = 10 * time.Second
	// drainLimit is how much of a response body beyond the snippet is read
	// and discarded so that the connection can be reused.
	drainLimit = 64 << 10
)

// Attempt outcomes, the values of the outcome label of the attempts counter.
const (
	outcomeDelivered   = "delivered"   // 2xx: the delivery is done
	outcomeRetry       = "retry"       // failed; another attempt is scheduled
	outcomeFailed      = "failed"      // failed; the delivery gave up (410, retries exhausted)
	outcomeInterrupted = "interrupted" // cut short by shutdown; not recorded
)

// MessageID returns the webhook-id header value of a delivery: stable across
// its retries, so that receivers can drop the duplicates that at-least-once
// delivery produces.
func MessageID(delivery int64) string { return "dd_" + strconv.FormatInt(delivery, 10) }

// Dispatcher delivers the webhook outbox of a store: at least once, in order
// per (url, deployment), several deliveries at a time, retrying failures on
// a schedule and recording every attempt.
//
// Set the exported fields before calling Run; Run reads them once. Run one
// Run per Dispatcher at a time: the dispatcher tracks the deliveries it has
// in flight in memory.
type Dispatcher struct {
	// HTTPClient sends the calls. Its Timeout is the limit of one attempt.
	// The default has a DefaultTimeout and does not follow redirects: a
	// 301/302/303 would turn the POST into a GET without the body, and a
	// redirect may lead to a host the operator never configured; a 3xx
	// answer is a failed attempt.
	HTTPClient *http.Client
	// Now returns the current time (recorded attempt times, due times).
	Now func() time.Time
	// Schedule holds the delays before the 1st, 2nd, ... retry. Once it is
	// used up, the last delay repeats until GiveUpAfter has passed since the
	// first attempt; a retry that would come later is not made and the
	// delivery fails. Nil or empty means DefaultSchedule().
	Schedule []time.Duration
	// GiveUpAfter is how long after its first attempt a delivery is retried
	// once the Schedule is used up. Zero means DefaultGiveUpAfter.
	GiveUpAfter time.Duration
	// Jitter spreads each scheduled delay by up to ± this fraction of it,
	// in [0, 1]. Zero disables jitter.
	Jitter float64
	// Workers is the most calls in flight at once. Zero means
	// DefaultWorkers.
	Workers int
	// PollInterval is the longest the dispatcher sleeps without looking at
	// the outbox, a safety net behind the store's DeliveriesReady signal.
	// Zero means DefaultPollInterval.
	PollInterval time.Duration
	// DrainTimeout is how long calls in flight may go on after Run's
	// context is done. Zero means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Lease is how long a delivery the dispatcher claims stays its own: no
	// other dispatcher on the database attempts it meanwhile, and if this
	// one dies mid-attempt another attempts it once the lease lapses. It
	// must outlast an attempt (HTTPClient's timeout) and its recording.
	// Zero means DefaultLease.
	Lease time.Duration
	// Hook looks a hook up by name in the current configuration, for the
	// secrets that sign its calls: secrets are never stored with a
	// delivery, so a rotated secret signs the next attempt. Nil knows no
	// hook: a call queued signed then fails its attempts until a hook
	// with secrets is back under its name.
	Hook func(name string) (*deploydb.Hook, bool)

	store    deploydb.Store
	logger   *slog.Logger
	attempts *prometheus.CounterVec
	latency  prometheus.Histogram
	delay    prometheus.Histogram
}

// delayBuckets returns the buckets of the delivery delay histogram: from a
// dispatcher woken by the commit (milliseconds) to a call held behind a
// failing one to the same hook (up to hours).
func delayBuckets() []float64 {
	return []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600}
}

// NewDispatcher returns a dispatcher of store's outbox with the default
// settings. It registers its metrics with reg when reg is not nil: the
// counter deploydb_webhook_attempts_total{outcome} (delivered, retry, failed,
// interrupted), the histogram deploydb_webhook_attempt_duration_seconds, and
// the histogram deploydb_webhook_delivery_delay_seconds of the time from a
// delivery's commit (its createdAt) to its first attempt.
// Metrics already registered with reg by another dispatcher are shared. It
// panics if reg refuses them for another reason, as MustRegister does.
func NewDispatcher(store deploydb.Store, logger *slog.Logger, reg prometheus.Registerer) *Dispatcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{
		HTTPClient: &http.Client{
			Transport: newTransport(),
			Timeout:   DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		Now:          time.Now,
		Schedule:     DefaultSchedule(),
		GiveUpAfter:  DefaultGiveUpAfter,
		Jitter:       DefaultJitter,
		Workers:      DefaultWorkers,
		PollInterval: DefaultPollInterval,
		DrainTimeout: DefaultDrainTimeout,
		store:        store,
		logger:       logger,
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deploydb_webhook_attempts_total",
			Help: "Webhook delivery attempts, by outcome: delivered, retry (failed, will retry), failed (gave up), interrupted (by shutdown, not counted against the delivery).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "deploydb_webhook_attempt_duration_seconds",
			Help:    "Duration of webhook delivery attempts, until the response (or the error).",
			Buckets: prometheus.DefBuckets,
		}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "deploydb_webhook_delivery_delay_seconds",
			Help:    "Time from the commit that queued a webhook delivery to its first attempt.",
			Buckets: delayBuckets(),
		}),
	}
	if reg != nil {
		d.attempts = register(reg, d.attempts)
		d.latency = register(reg, d.latency)
		d.delay = register(reg, d.delay)
	}
	return d
}

// maxIdleConnsPerHost bounds the idle connections the dispatcher's
// transport keeps to one receiver. net/http's default of 2 made a
// dispatcher with more workers than that open a new connection for most
// calls to a busy receiver (and leave the closed ones in TIME_WAIT); the
// workers bound the connections in use at once, so this only needs to be
// above any sensible Workers.
const maxIdleConnsPerHost = 1024

// newTransport returns the transport of the dispatcher's default client:
// net/http's default one (proxy from the environment, dial and TLS
// timeouts, HTTP/2) that keeps a connection per worker to a receiver
// open between calls.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = maxIdleConnsPerHost
	t.MaxIdleConnsPerHost = maxIdleConnsPerHost
	return t
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(fmt.Sprintf("webhook: register metrics: %v", err))
}

// settings is a validated copy of a Dispatcher's exported fields.
type settings struct {
	client       *http.Client
	now          func() time.Time
	schedule     []time.Duration
	giveUpAfter  time.Duration
	jitter       float64
	workers      int
	pollInterval time.Duration
	drainTimeout time.Duration
	hook         func(string) (*deploydb.Hook, bool)
	lease        time.Duration
}

func (d *Dispatcher) settings() (settings, error) {
	s := settings{
		client:       d.HTTPClient,
		now:          d.Now,
		schedule:     append([]time.Duration(nil), d.Schedule...),
		giveUpAfter:  d.GiveUpAfter,
		jitter:       d.Jitter,
		workers:      d.Workers,
		pollInterval: d.PollInterval,
		drainTimeout: d.DrainTimeout,
		hook:         d.Hook,
		lease:        d.Lease,
	}
	if s.lease == 0 {
		s.lease = DefaultLease
	}
	if s.client == nil {
		s.client = &http.Client{Transport: newTransport(), Timeout: DefaultTimeout}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if len(s.schedule) == 0 {
		s.schedule = DefaultSchedule()
	}
	if s.giveUpAfter == 0 {
		s.giveUpAfter = DefaultGiveUpAfter
	}
	if s.workers == 0 {
		s.workers = DefaultWorkers
	}
	if s.pollInterval == 0 {
		s.pollInterval = DefaultPollInterval
	}
	if s.drainTimeout == 0 {
		s.drainTimeout = DefaultDrainTimeout
	}
	var bad []string
	for _, v := range s.schedule {
		if v < 0 {
			bad = append(bad, "Schedule has a negative delay")
			break
		}
	}
	if s.giveUpAfter < 0 {
		bad = append(bad, "GiveUpAfter is negative")
	}
	if s.jitter < 0 || s.jitter > 1 {
		bad = append(bad, "Jitter is not in [0, 1]")
	}
	if s.workers < 0 {
		bad = append(bad, "Workers is negative")
	}
	if s.drainTimeout < 0 {
		bad = append(bad, "DrainTimeout is negative")
	}
	if s.pollInterval < 0 {
		bad = append(bad, "PollInterval is negative")
	}
	if len(bad) > 0 {
		return s, deploydb.Errorf(deploydb.EINVALID, "webhook: dispatcher settings: %s", strings.Join(bad, "; "))
	}
	return s, nil
}

// Run delivers due webhook calls until ctx is done, then waits for the
// calls in flight to stop and returns nil. It returns EINVALID at once if
// the dispatcher's settings are invalid. Store errors are logged and the
// outbox is tried again after PollInterval; they never stop Run.
//
// On shutdown, calls in flight get up to DrainTimeout to finish and be
// recorded. Shutdown keeps the at-least-once promise: a call cut short after
// that is not recorded as an attempt at all. The delivery stays pending and due, does
// not use up a retry, and is sent again (with the same webhook-id) after a
// restart. An attempt that got its answer before the shutdown is recorded.
func (d *Dispatcher) Run(ctx context.Context) error {
	s, err := d.settings()
	if err != nil {
		return err
	}
	// Calls in flight outlive ctx by up to DrainTimeout, so that a clean
	// shutdown records what the receivers already got instead of sending it
	// again after the restart.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	var wg sync.WaitGroup
	defer func() {
		drained := make(chan struct{})
		go func() { wg.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(s.drainTimeout):
			cancelSends()
			<-drained
		}
	}()
	inflight := make(map[int64]bool, s.workers)
	// again holds deliveries claimed while their previous attempt's worker
	// had recorded it but not yet said so: they are this dispatcher's, and
	// start as soon as that worker is done. (A delivery whose attempt could
	// not be recorded stays claimed until the lease lapses: the pause that
	// keeps a failing database from making it hammer the receiver.)
	again := map[int64]*deploydb.Delivery{}
	// Each worker sends exactly once and at most s.workers are in flight,
	// so workers never block on done, even after Run stopped reading it.
	done := make(chan int64, s.workers)
	start := func(dl *deploydb.Delivery) {
		inflight[dl.ID] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.deliver(sendCtx, &s, dl)
			done <- dl.ID
		}()
	}
	finished := func(id int64) {
		delete(inflight, id)
		if dl, ok := again[id]; ok {
			delete(again, id)
			start(dl)
		}
	}
	for {
		now := s.now()
		wait := s.pollInterval
		ok, full := true, true
		if free := s.workers - len(inflight); free > 0 {
			// Claim as many as there are free workers: a claimed delivery
			// is this dispatcher's until the lease lapses, attempted by no
			// other process on the database.
			// The claim is not cut short by ctx, only bounded: one
			// whose commit went through as the dispatcher stopped (a
			// cancelled COMMIT may still commit) would otherwise leave
			// its deliveries claimed by nobody until the lease lapsed.
			// What it claims is started, and drains with the rest.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
			due, err := d.store.ClaimDeliveries(cctx, now, free, s.lease)
			cancel()
			if err != nil {
				ok = false
				if ctx.Err() == nil {
					d.logger.Error("webhook: find due deliveries", "error", err)
				}
			}
			full = len(due) == free
			for _, dl := range due {
				if inflight[dl.ID] {
					again[dl.ID] = dl
					continue
				}
				start(dl)
			}
		}
		// With every worker busy (or a claim that took all it asked
		// for, so that more may be due), the next worker to finish wakes
		// Run: the time of the next due delivery matters only when the
		// outbox had less to give than the workers could take.
		if ok && !full {
			wait = d.nextWait(ctx, &s, now)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-d.store.DeliveriesReady():
		case id := <-done:
			finished(id)
			// Workers that finished meanwhile free their places too, so
			// that one claim fills them all: one claim per delivery would
			// make claims the dispatcher's bottleneck.
			for more := true; more; {
				select {
				case id := <-done:
					finished(id)
				default:
					more = false
				}
			}
		case <-timer.C:
		}
		timer.Stop()
	}
}

// nextWait returns how long to sleep before looking at the outbox again,
// given the time now at which the last look found what was due. A queue
// head that was due at now is in flight or waits for a free worker, and a
// worker finishing wakes Run, so only later heads set a timer.
func (d *Dispatcher) nextWait(ctx context.Context, s *settings, now time.Time) time.Duration {
	next, err := d.store.NextDeliveryAt(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.logger.Error("webhook: find next delivery", "error", err)
		}
		return s.pollInterval
	}
	// The store keeps milliseconds and compares them with now's.
	if next.IsZero() || next.UnixMilli() <= now.UnixMilli() {
		return s.pollInterval
	}
	return min(max(next.Sub(s.now()), 0), s.pollInterval)
}

// response is what one call got back.
type response struct {
	code       int
	retryAfter string
	snippet    string
}

// deliver makes one attempt at dl and records it with its outcome. An
// attempt that cannot be recorded leaves the delivery claimed until the
// lease lapses, then due again: at least once, after a pause.
func (d *Dispatcher) deliver(ctx context.Context, s *settings, dl *deploydb.Delivery) {
	// The logger of this attempt, made only for an attempt that logs: a
	// delivered one does not, and rendering the URL it shows (a parse)
	// on every call was part of each delivery's cost.
	log := func() *slog.Logger {
		return d.logger.With("delivery", dl.ID, "event", dl.EventType, "hook", ShownHookName(dl.Hook), "url", ShownURL(dl))
	}
	started := s.now()
	t0 := time.Now()
	var resp response
	req, secrets, err := s.prepare(dl)
	if err == nil {
		// Receivers check the signature's timestamp against their clock.
		resp, err = send(ctx, s.client, dl.ID, req, secrets, time.Now())
	}
	latency := time.Since(t0)
	if err != nil && ctx.Err() != nil {
		d.attempts.WithLabelValues(outcomeInterrupted).Inc()
		log().Info("webhook attempt interrupted by shutdown; the delivery stays pending", "attempt", dl.Attempts+1)
		// Due again at once, for the next start or another process.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		if err := d.store.ReleaseDeliveries(rctx, []int64{dl.ID}); err != nil {
			log().Warn("webhook: release an interrupted delivery; it is due again when its claim lapses", "error", err)
		}
		return
	}
	finished := s.now()
	r := deploydb.AttemptResult{Attempt: deploydb.Attempt{
		Delivery:   dl.ID,
		StatusCode: resp.code,
		Latency:    latency,
		Response:   resp.snippet,
		CreatedAt:  deploydb.NewTime(started),
	}}
	var permanent bool
	var retryAfter time.Duration
	var bad *badRequestError
	switch {
	case errors.As(err, &bad):
		r.Attempt.Error, permanent = err.Error(), true
	case err != nil:
		r.Attempt.Error = errorText(err)
	case resp.code >= 200 && resp.code < 300:
		r.Done, r.Status, r.NextAttemptAt = true, deploydb.DeliveryDelivered, finished
	case resp.code == http.StatusGone:
		r.Attempt.Error, permanent = "HTTP 410 Gone: the receiver asked to stop this delivery", true
	case resp.code >= 300 && resp.code < 400:
		r.Attempt.Error = fmt.Sprintf("HTTP %d: redirects are not followed", resp.code)
	case resp.code == http.StatusTooManyRequests || resp.code == http.StatusServiceUnavailable:
		retryAfter, _ = parseRetryAfter(resp.retryAfter, finished)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	outcome := outcomeDelivered
	if !r.Done {
		outcome = outcomeRetry
		if !permanent {
			r.NextAttemptAt = d.retryAt(rctx, s, dl, finished, retryAfter)
		}
		if r.NextAttemptAt.IsZero() {
			outcome = outcomeFailed
			r.Done, r.Status, r.NextAttemptAt = true, deploydb.DeliveryFailed, finished
		}
	}
	// Counted before it is recorded, so that whoever sees the attempt in
	// the store sees it counted too.
	d.attempts.WithLabelValues(outcome).Inc()
	d.latency.Observe(latency.Seconds())
	if dl.Attempts == 0 {
		// The first attempt: how long the call waited in the outbox (a
		// redelivered one has attempts, and is not counted again).
		d.delay.Observe(max(started.Sub(dl.CreatedAt.Time), 0).Seconds())
	}
	if err := d.store.RecordAttempt(rctx, r); err != nil {
		log().Error("webhook: record attempt; the delivery is attempted again when its claim lapses", "error", err, "status", resp.code)
		return
	}
	switch outcome {
	case outcomeRetry:
		log().Warn("webhook attempt failed", "status", resp.code, "error", r.Attempt.Error,
			"attempt", dl.Attempts+1, "next_attempt_at", r.NextAttemptAt.UTC().Format(time.RFC3339))
	case outcomeFailed:
		log().Warn("webhook attempt failed; giving up on the delivery", "status", resp.code, "error", r.Attempt.Error,
			"attempt", dl.Attempts+1)
	}
}

// retryAt returns when to retry dl after a failed attempt that finished at
// now, or the zero time to give up. A positive retryAfter (the receiver's
// Retry-After) replaces the scheduled delay.
func (d *Dispatcher) retryAt(ctx context.Context, s *settings, dl *deploydb.Delivery, now time.Time, retryAfter time.Duration) time.Time {
	n := dl.Attempts + 1
	delay := retryAfter
	if delay <= 0 {
		delay = retryDelay(s.schedule, n, s.jitter)
	}
	next := now.Add(delay)
	if n <= len(s.schedule) {
		return next
	}
	first := dl.CreatedAt.Time
	if as, err := d.store.FindAttempts(ctx, dl.ID); err == nil && len(as) > 0 {
		first = as[0].CreatedAt.Time
	}
	if next.After(first.Add(s.giveUpAfter)) {
		return time.Time{}
	}
	return next
}

// badRequestError is a call that cannot be made at all (a malformed URL or
// method): retrying cannot help.
type badRequestError struct{ msg string }

func (e *badRequestError) Error() string { return "cannot build the request: " + e.msg }

// prepare returns the call dl makes now, and the secrets that sign it:
// both come from the hook of that name in the configuration in force. A
// call queued signed is never sent unsigned.
func (s *settings) prepare(dl *deploydb.Delivery) (*Request, []string, error) {
	var h *deploydb.Hook
	if dl.Hook != "" && s.hook != nil {
		if found, ok := s.hook(dl.Hook); ok {
			h = found
		}
	}
	req, err := NewRequest(dl, h)
	if err != nil {
		return nil, nil, err
	}
	var secrets []string
	if h != nil {
		secrets = h.Secrets
	}
	if dl.Signed && len(secrets) == 0 {
		return nil, nil, fmt.Errorf("hook %q has no secret in the configuration any more: a call queued signed is not sent unsigned", ShownHookName(dl.Hook))
	}
	return req, secrets, nil
}

// send makes call r of delivery id, signed with secrets if there are any,
// at time now.
func send(ctx context.Context, client *http.Client, id int64, r *Request, secrets []string, now time.Time) (response, error) {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		return response{}, &badRequestError{msg: errorText(err)}
	}
	for _, h := range r.Headers {
		req.Header.Add(h.Name, h.Value)
	}
	if body != nil {
		req.Header.Set("Content-Type", r.ContentType)
	}
	req.Header.Set("User-Agent", UserAgent)
	msgID := MessageID(id)
	req.Header.Set(HeaderID, msgID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	if len(secrets) > 0 {
		sig, err := Sign(secrets, msgID, now, r.Body)
		if err != nil {
			return response{}, &badRequestError{msg: err.Error()}
		}
		req.Header.Set(HeaderSignature, sig)
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	// A body cut short (by the timeout or a shutdown) still leaves the
	// answer the status code gave.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, ResponseSnippetLimit))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	return response{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), snippet: snippet(b)}, nil
}

// snippet returns b as text, without a rune cut in half at the end.
func snippet(b []byte) string {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				b = b[:i]
			}
			break
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// errorText returns the text of a call's error without the URL that
// net/http puts in it: its query string may carry a secret.
func errorText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// ShownURL returns the URL of dl as the API and logs show it: rendered from
// the hook's URL as written in the config (${env:NAME} unexpanded), or for
// calls queued before that was kept, from the URL called; either without
// user info, query and fragment, which may carry credentials.
func ShownURL(dl *deploydb.Delivery) string {
	if dl.ShownURL != "" {
		return dl.ShownURL
	}
	return redactURL(dl.URL)
}

// RedactURL returns raw without user info, query string and fragment,
// which may carry secrets: the form logs and the API show.
func RedactURL(raw string) string { return redactURL(raw) }

// redactURL is RedactURL, under the name the dispatcher's code uses.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(malformed URL)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}
