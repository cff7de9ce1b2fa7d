// Package tiers adapts the tier services' gRPC clients to the batch
// runner's Tier interface.
package tiers

import (
	"context"
	"errors"
	"fmt"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	"github.com/fetchmesh/fetchmesh/services/gateway/internal/batch"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rpcFailure turns a failed call to a tier service into a typed attempt
// failure, so a tier that is down or slow becomes a per-URL result.
func rpcFailure(ctx context.Context, tier string, err error) batch.AttemptResult {
	kind, retry := commonv1.ErrorKind_ERROR_KIND_TIER_UNAVAILABLE, true
	msg := fmt.Sprintf("the %s tier could not be reached", tier)
	switch status.Code(err) {
	case codes.Unimplemented:
		retry, msg = false, fmt.Sprintf("the %s tier is not available in this deployment", tier)
	case codes.DeadlineExceeded:
		kind, msg = commonv1.ErrorKind_ERROR_KIND_TIMEOUT, fmt.Sprintf("the %s tier did not answer in time", tier)
	case codes.Canceled:
		kind, retry, msg = commonv1.ErrorKind_ERROR_KIND_CANCELED, false, "canceled"
	case codes.InvalidArgument:
		kind, retry, msg = commonv1.ErrorKind_ERROR_KIND_INTERNAL, false, fmt.Sprintf("the %s tier refused the request: %s", tier, status.Convert(err).Message())
	case codes.ResourceExhausted:
		msg = fmt.Sprintf("the %s tier is overloaded", tier)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		kind, msg = commonv1.ErrorKind_ERROR_KIND_TIMEOUT, "the URL's deadline passed"
	}
	return batch.AttemptResult{
		Verdict: commonv1.Verdict_VERDICT_FAILED,
		Reason:  msg,
		Error:   &commonv1.Error{Kind: kind, Message: msg, Retryable: retry},
	}
}
