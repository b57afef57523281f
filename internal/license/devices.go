package license

import (
	"context"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// kindDeviceReleased is the history kind of a device an operator
// released.
const kindDeviceReleased = "device-released"

// ReleaseDevice frees the seat of device (its DeviceID, as the console
// lists it) on the code (code, test), for an operator whose customer
// replaced a machine: the device must activate again to be served, taking
// a seat if one is free. The release is written with a history row, in a
// transaction that bumps the code's Version (so it cannot interleave with
// a device taking the last seat), and tells the vendor nothing. An
// unknown code or device is an error wrapping store.ErrNotFound.
func (s *Service) ReleaseDevice(ctx context.Context, code string, test bool, device string) error {
	_, err := s.change(ctx, code, test, func(ctx context.Context, tx store.Tx, c *store.LicenseCode, isNew bool, _ time.Time) ([]entry, error) {
		if isNew {
			return nil, fmt.Errorf("no such license code: %w", store.ErrNotFound)
		}
		deleted, err := tx.DeleteLicenseDevice(ctx, code, test, device)
		if err != nil {
			return nil, err
		}
		if !deleted {
			return nil, fmt.Errorf("no such device of the license code: %w", store.ErrNotFound)
		}
		return []entry{{kind: kindDeviceReleased, source: sourceAdmin, detail: map[string]any{"device": device}}}, nil
	})
	if err != nil {
		return fmt.Errorf("license: release device %s of %s: %w", device, code, err)
	}
	return nil
}
