package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel stop the server should the benchmark die
// without stopping it (killed, or a panic): no deploydb is left behind
// holding the port and the database.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
