package usage

import (
	"context"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// UsageInfo returns queryInstance's usageInfo for the pay-per-use
// instances among insts, by instance ID, from the usage ingested: for an
// ON_DEMAND instance its cumulative total, measured at its latest record
// (now when it has none); for an ON_DEMAND_PKG package one entry per
// pay-per-use item of its order (relatedInstanceId the item), and its own
// total when usage was reported on the package itself or it has no items.
// Other instances are absent.
func (s *Service) UsageInfo(ctx context.Context, insts []store.Instance) (map[string][]protocol.UsageInfo, error) {
	var ids []string
	items := map[string][]store.Instance{}
	for _, in := range insts {
		switch in.ChargingMode {
		case protocol.ChargingOnDemand:
			ids = append(ids, in.ID)
		case protocol.ChargingOnDemandPkg:
			ids = append(ids, in.ID)
			its, err := s.itemsOf(ctx, in)
			if err != nil {
				return nil, err
			}
			items[in.ID] = its
			for _, it := range its {
				ids = append(ids, it.ID)
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	totals, err := s.store.UsageTotals(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("usage: read totals: %w", err)
	}
	now := s.now()
	entry := func(id, related string) protocol.UsageInfo {
		t := totals[id]
		at := t.LastTime
		if at.IsZero() {
			at = now
		}
		return protocol.UsageInfo{
			RelatedInstanceID: related,
			UsageValue:        protocol.DecimalFromUnits(t.Total),
			StatisticalTime:   protocol.FormatTime17(at.In(time.UTC)),
		}
	}
	out := map[string][]protocol.UsageInfo{}
	for _, in := range insts {
		switch in.ChargingMode {
		case protocol.ChargingOnDemand:
			out[in.ID] = []protocol.UsageInfo{entry(in.ID, "")}
		case protocol.ChargingOnDemandPkg:
			var list []protocol.UsageInfo
			for _, it := range items[in.ID] {
				list = append(list, entry(it.ID, it.ID))
			}
			if _, own := totals[in.ID]; own || len(list) == 0 {
				list = append(list, entry(in.ID, ""))
			}
			out[in.ID] = list
		}
	}
	return out, nil
}
