package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// asMain is the environment variable that makes the test binary run as
// deploydb itself, so that tests can start real server processes and kill
// them with SIGKILL. Under -race the processes are race-checked too.
const asMain = "DEPLOYDB_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// process is a `deploydb serve` running in a process of its own.
type process struct {
	URL  string
	cmd  *exec.Cmd
	logs *lockedBuffer
	done chan struct{} // closed once the process has exited
	err  error         // Wait's result, set before done is closed
}

// spawn starts `deploydb serve` in a new process on 127.0.0.1:0 with the
// config directory, database and environment given (more serve arguments
// after them), and returns once it is ready. The process is stopped with
// SIGTERM at the end of the test, unless it is gone by then; a clean stop
// must exit 0 and report no data race. It logs text (--log-format text)
// unless more says otherwise.
func spawn(t *testing.T, configDir, database string, env map[string]string, more ...string) *process {
	t.Helper()
	args := append([]string{"serve", "--config", configDir, "--database", database, "--listen", "127.0.0.1:0", "--log-format", "text"}, more...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asMain+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, logs: &lockedBuffer{}, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.logs.Write([]byte(line + "\n"))
			if m := readyLine.FindStringSubmatch(line); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	select {
	case p.URL = <-ready:
		return p
	case <-p.done:
		t.Fatalf("deploydb %s exited before it was ready: %v\n%s", strings.Join(args, " "), p.err, p.logs)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("deploydb %s not ready within 30s\n%s", strings.Join(args, " "), p.logs)
	}
	return nil
}

// kill ends the process with SIGKILL, as a crash or the OOM killer would:
// nothing is flushed, nothing is released. It returns once it is gone.
func (p *process) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop ends the process with SIGTERM and checks that it shut down cleanly.
func (p *process) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return // killed, or stopped already
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("deploydb did not stop within 30s of SIGTERM\n%s", p.logs)
		return
	}
	if p.err != nil || strings.Contains(p.logs.String(), "DATA RACE") {
		t.Errorf("deploydb stopped with %v\n%s", p.err, p.logs)
	}
}

// String names the process in failure messages.
func (p *process) String() string {
	return fmt.Sprintf("deploydb (pid %d) at %s", p.cmd.Process.Pid, p.URL)
}
