package fetcher

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	"github.com/fetchmesh/fetchmesh/services/shared/ssrf"
)

// classifyError turns a transport error into a typed, client-safe error.
// ctx is the fetch's context, whose cause tells a dripping body, the total
// deadline and a caller's cancel apart.
func classifyError(ctx context.Context, err error, total time.Duration) (commonv1.ErrorKind, string, bool) {
	var (
		blocked  *ssrf.BlockedError
		dnsErr   *net.DNSError
		corrupt  *errCorruptEncoding
		redirect *errBadRedirect
		certErr  *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		netErr   net.Error
	)
	cause := context.Cause(ctx)
	switch {
	case errors.As(err, &blocked):
		return commonv1.ErrorKind_ERROR_KIND_FORBIDDEN_ADDRESS, blocked.Error(), false
	case errors.As(err, &redirect):
		if errors.As(redirect.err, &blocked) {
			return commonv1.ErrorKind_ERROR_KIND_FORBIDDEN_ADDRESS, redirect.Error(), false
		}
		return commonv1.ErrorKind_ERROR_KIND_INVALID_URL, redirect.Error(), false
	case errors.Is(err, errTooManyRedirects):
		return commonv1.ErrorKind_ERROR_KIND_TOO_MANY_REDIRECTS, "stopped after too many redirects", false
	case errors.Is(cause, errBodyIdle):
		return commonv1.ErrorKind_ERROR_KIND_TIMEOUT, "the body stopped arriving (idle too long)", true
	case errors.Is(cause, context.DeadlineExceeded) && ctx.Err() != nil:
		return commonv1.ErrorKind_ERROR_KIND_TIMEOUT, fmt.Sprintf("the fetch took longer than its %s deadline", total), true
	case errors.Is(cause, context.Canceled):
		return commonv1.ErrorKind_ERROR_KIND_CANCELED, "the fetch was canceled", false
	case errors.As(err, &corrupt):
		return commonv1.ErrorKind_ERROR_KIND_PROTOCOL, corrupt.Error(), false
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return commonv1.ErrorKind_ERROR_KIND_DNS, fmt.Sprintf("host %s not found", dnsErr.Name), false
		}
		return commonv1.ErrorKind_ERROR_KIND_DNS, fmt.Sprintf("resolving %s failed", dnsErr.Name), true
	case errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &hostErr):
		return commonv1.ErrorKind_ERROR_KIND_TLS, "the site's TLS certificate was not accepted", false
	case errors.As(err, &recErr), errors.As(err, &alertErr), strings.Contains(err.Error(), "tls: "):
		return commonv1.ErrorKind_ERROR_KIND_TLS, "the TLS handshake failed", false
	case strings.Contains(err.Error(), "server response headers exceeded"):
		return commonv1.ErrorKind_ERROR_KIND_TOO_LARGE, "the response headers are larger than the limit", false
	case strings.Contains(err.Error(), "timeout awaiting response headers"):
		return commonv1.ErrorKind_ERROR_KIND_TIMEOUT, "no response headers within the first-byte deadline", true
	case errors.As(err, &netErr) && netErr.Timeout():
		return commonv1.ErrorKind_ERROR_KIND_TIMEOUT, "a network operation timed out", true
	case errors.Is(err, syscall.ECONNREFUSED):
		return commonv1.ErrorKind_ERROR_KIND_CONNECT, "the connection was refused", true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return commonv1.ErrorKind_ERROR_KIND_CONNECT, "the connection was reset", true
	case isDialErr(err):
		return commonv1.ErrorKind_ERROR_KIND_CONNECT, "the connection could not be made", true
	default:
		return commonv1.ErrorKind_ERROR_KIND_PROTOCOL, "the server's answer was malformed or cut short", true
	}
}

func isDialErr(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
