package mockapi

import (
	"strconv"
	"time"

	"github.com/koobridge/koobridge/protocol"
)

// The debug orders KooGallery answers with canned data (saas-v2.md §6.5,
// license-openapi.md §E.2; the source spells MONTY, not MONTH).
const (
	MockPeriodYearNew       = "MOCKPERIODYEARNEW"
	MockOneTimeNew          = "MOCKONETIMENEW"
	MockOnDemand            = "MOCKONDEMAND"
	MockOnDemandPkg         = "MOCKONDEMANDPKG"
	MockPeriodDayTrial      = "MOCKPERIODDAYTRIAL"
	MockMonthTrialToFormal  = "MOCKMONTYTRIALTOFORMAL"
	MockMonthUnsubscribe    = "MOCKMONTYUNSUBSCRIBE"
	MockMonthRenew          = "MOCKMONTYRENEW"
	MockMonthChange         = "MOCKMONTYCHANGE"
	mockLineSuffix          = "-000001"
	mockProductID           = "OFFI846204237451911168"
	mockSKUCode             = "0a4d1578-6c0e-4d4b-9d1c-5f2e8a7b3c10"
	mockChangedSKUCode      = "0a4d1578-6c0e-4d4b-9d1c-5f2e8a7b3c11"
	mockTrialDays           = 7
	mockMonthsPerPeriodLine = 12
)

// MockOrderIDs lists the debug orders in the order of saas-v2.md §6.5.
var MockOrderIDs = []string{
	MockPeriodYearNew, MockOneTimeNew, MockOnDemand, MockOnDemandPkg, MockPeriodDayTrial,
	MockMonthTrialToFormal, MockMonthUnsubscribe, MockMonthRenew, MockMonthChange,
}

// mockSpec is what tells the debug orders apart.
type mockSpec struct {
	orderType    string
	chargingMode string
	periodType   string
	periodNumber int
	sku          string
}

var mockSpecs = map[string]mockSpec{
	MockPeriodYearNew:      {protocol.OrderTypeNew, protocol.ChargingPeriod, "year", 1, mockSKUCode},
	MockOneTimeNew:         {protocol.OrderTypeNew, protocol.ChargingOneTime, "", 0, mockSKUCode},
	MockOnDemand:           {protocol.OrderTypeNew, protocol.ChargingOnDemand, "", 0, mockSKUCode},
	MockOnDemandPkg:        {protocol.OrderTypeNew, protocol.ChargingOnDemandPkg, "", 0, mockSKUCode},
	MockPeriodDayTrial:     {protocol.OrderTypeTrial, protocol.ChargingPeriod, "day", mockTrialDays, mockSKUCode},
	MockMonthTrialToFormal: {protocol.OrderTypeTrialToFormal, protocol.ChargingPeriod, "month", mockMonthsPerPeriodLine, mockSKUCode},
	MockMonthUnsubscribe:   {protocol.OrderTypeUnsubscribe, protocol.ChargingPeriod, "month", mockMonthsPerPeriodLine, mockSKUCode},
	MockMonthRenew:         {protocol.OrderTypeRenew, protocol.ChargingPeriod, "month", mockMonthsPerPeriodLine, mockSKUCode},
	MockMonthChange:        {protocol.OrderTypeChange, protocol.ChargingPeriod, "month", mockMonthsPerPeriodLine, mockChangedSKUCode},
}

// MockOrder returns the canned Query Order data of a debug order as of
// now, shaped like the example of license-openapi.md §E.2, and false for
// any other ID. Its one line is orderID + "-000001".
//
// Period orders expire at 23:59:59 UTC a year after now (the monthly ones
// are 12 months long), except MOCKPERIODDAYTRIAL, a 7-day trial
// (periodType "day", an UNCONFIRMED token) that expires 7 days after now.
// MOCKMONTYCHANGE carries a different skuCode from the others, so an
// upgrade visibly changes the specification. One-time and pay-per-use
// orders have no period and no expireTime.
func MockOrder(orderID string, now time.Time) (protocol.OrderInfo, bool) {
	spec, ok := mockSpecs[orderID]
	if !ok {
		return protocol.OrderInfo{}, false
	}
	now = now.UTC()
	line := protocol.OrderLine{
		OrderLineID:           protocol.FlexString(orderID + mockLineSuffix),
		ChargingMode:          protocol.FlexString(spec.chargingMode),
		Currency:              "100",
		CurrencyAfterDiscount: "100",
		ProductInfo: protocol.ProductInfoList{{
			ProductID:   mockProductID,
			SKUCode:     protocol.FlexString(spec.sku),
			LinearValue: "50",
			ProductName: "MOCK测试商品",
		}},
		ExtendParams: protocol.ExtendParamList{
			{Name: "emailDomainName", Value: "test.example.com"},
			{Name: "ip", Value: "127.0.0.1"},
		},
	}
	if spec.periodType != "" {
		line.PeriodType = protocol.FlexString(spec.periodType)
		line.PeriodNumber = protocol.FlexNumber(strconv.Itoa(spec.periodNumber))
		end := now.AddDate(1, 0, 0)
		if spec.periodType == "day" {
			end = now.AddDate(0, 0, spec.periodNumber)
		}
		end = time.Date(end.Year(), end.Month(), end.Day(), 23, 59, 59, 0, time.UTC)
		line.ExpireTime = protocol.FlexString(protocol.FormatTime14(end))
	}
	return protocol.OrderInfo{
		OrderID:    protocol.FlexString(orderID),
		OrderType:  protocol.FlexString(spec.orderType),
		CreateTime: protocol.FlexString(protocol.FormatTime14(now)),
		OrderLine:  []protocol.OrderLine{line},
		BuyerInfo: &protocol.BuyerInfo{
			CustomerID:       "mock-customer-0001",
			CustomerName:     "mock_user_01",
			CustomerRealName: "测试用户1",
			CustomerType:     "0",
			MobilePhone:      "15905222222",
		},
		ExtendParams: protocol.ExtendParamList{},
	}, true
}
