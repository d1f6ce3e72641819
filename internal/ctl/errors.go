package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/btcmesh/btcmesh/internal/rules"
)

// Bitcoin Core's JSON-RPC error codes used here.
const (
	codeMiscError         = -1
	codeTypeError         = -3
	codeInvalidAddress    = -5
	codeInvalidParameter  = -8
	codeDeserialization   = -22
	codeNodeAlreadyAdded  = -23
	codeNodeNotAdded      = -24
	codeVerifyError       = -25
	codeVerifyRejected    = -26
	codeAlreadyInChain    = -27
	codeNodeNotConnected  = -29
	codeInvalidIPOrSubnet = -30
	codeMethodNotFound    = -32601
	codeInvalidParams     = -32602
)

// rpcError is an error reported as bitcoin-cli reports server errors.
type rpcError struct {
	code int
	msg  string
}

// Error renders the error like bitcoin-cli.
func (e *rpcError) Error() string {
	return fmt.Sprintf("error code: %d\nerror message:\n%s", e.code, e.msg)
}

// rpcErr builds an rpcError.
func rpcErr(code int, format string, args ...any) error {
	return &rpcError{code: code, msg: fmt.Sprintf(format, args...)}
}

// plainError is a client-side failure printed as "error: TEXT".
type plainError struct{ msg string }

// Error returns the text.
func (e *plainError) Error() string { return e.msg }

// argErr reports a bad argument.
func argErr(format string, args ...any) error {
	return &plainError{msg: fmt.Sprintf(format, args...)}
}

// writeError prints err to w in bitcoin-cli's format.
func writeError(w io.Writer, err error) {
	var re *rpcError
	if errors.As(err, &re) {
		fmt.Fprintln(w, re.Error())
		return
	}
	fmt.Fprintf(w, "error: %v\n", err)
}

// codeMap overrides the generic mapping of a gRPC code for one verb.
type codeMap map[codes.Code]*rpcError

// grpcErr converts an error from calling service s into what bitcoin-cli
// would print. Rule violations become -26 "RULE (detail)"; overrides
// replace the generic mapping of selected codes.
func (c *cli) grpcErr(s service, err error, overrides codeMap) error {
	if err == nil {
		return nil
	}
	addr := c.opts.addr(s)
	st, ok := status.FromError(err)
	if !ok {
		if errors.Is(err, context.DeadlineExceeded) {
			return &plainError{msg: fmt.Sprintf("timed out after %s waiting for %s at %s", c.opts.timeout, s, addr)}
		}
		return rpcErr(codeMiscError, "%v", err)
	}
	if o, ok := overrides[st.Code()]; ok {
		if o.msg == "" {
			return rpcErr(o.code, "%s", st.Message())
		}
		return o
	}
	if re, ok := rules.FromStatus(err); ok {
		return rpcErr(codeVerifyRejected, "%s", ruleText(re))
	}
	switch st.Code() {
	case codes.Unavailable:
		return &plainError{msg: fmt.Sprintf("Could not connect to the server %s\n\nMake sure the btcmesh node is running and that --rpc (or --rpc-%s) names its --grpc-listen address.", addr, s)}
	case codes.DeadlineExceeded:
		return &plainError{msg: fmt.Sprintf("timed out after %s waiting for %s at %s", c.opts.timeout, s, addr)}
	case codes.Canceled:
		return &plainError{msg: "interrupted"}
	case codes.Unimplemented:
		return rpcErr(codeMethodNotFound, "Method not found (%s at %s does not serve it: %s)", s, addr, st.Message())
	case codes.InvalidArgument:
		return rpcErr(codeInvalidParameter, "%s", st.Message())
	case codes.NotFound:
		return rpcErr(codeInvalidAddress, "%s", st.Message())
	case codes.FailedPrecondition:
		return rpcErr(codeVerifyError, "%s", st.Message())
	default:
		return rpcErr(codeMiscError, "%s", st.Message())
	}
}

// ruleText renders a rule violation as "RULE (detail)".
func ruleText(re *rules.RuleError) string {
	if re.Detail == "" || re.Detail == string(re.Kind) {
		return string(re.Kind)
	}
	return fmt.Sprintf("%s (%s)", re.Kind, re.Detail)
}
