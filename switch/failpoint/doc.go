// Package failpoint kills the process at a named step of the commit path,
// for crash tests that must hit one exact instant (kill -9 from outside
// lands anywhere). It is compiled in only with the build tag failpoints;
// without it, Hit is an empty function the compiler removes.
//
// With the tag, the environment variable DIENBAO_FAILPOINT=NAME:N makes
// the N-th Hit(NAME) send SIGKILL to the process itself. The steps:
//
//	before-write   the commit loop is about to apply a batch: nothing written
//	before-commit  the batch is in the transaction, not committed
//	after-commit   the transaction is committed and fsynced, nobody answered
//	before-reply   a filing's commit was answered; its reply is not written
//
// Panic makes the N-th pass through its step panic instead (a bug there):
//
//	handler        a request's handler is about to run
package failpoint
