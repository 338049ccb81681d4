package servertest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the server process die with the test binary, even when
// the test is killed (a timeout's panic runs no cleanup).
func dieWithParent(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
