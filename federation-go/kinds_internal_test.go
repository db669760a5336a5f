package federation

import (
	"errors"
	"testing"
)

// TestKindCodes pins the FEDERATION_ERROR_* values of include/federation.h to the Go kinds and
// their sentinels, so an ABI change cannot silently remap errors.
func TestKindCodes(t *testing.T) {
	want := map[uint32]error{
		1: ErrConfig, 2: ErrDiscovery, 3: ErrNoHealthyInstance, 4: ErrCircuitOpen,
		5: ErrTimeout, 6: ErrTransport, 7: ErrBudgetExhausted, 8: ErrOverloaded,
		9: ErrCancelled, 10: ErrInvalidRequest, 11: ErrInternal, 0: ErrInternal, 99: ErrInternal,
	}
	for code, sentinel := range want {
		err := &Error{Kind: kindFromCode(code), Message: "m"}
		if !errors.Is(err, sentinel) {
			t.Errorf("code %d: kind %v does not match %v", code, err.Kind, sentinel)
		}
	}
}
