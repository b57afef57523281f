package openapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/koobridge/koobridge/protocol"
)

// QueryOrderPath is the path of Query Order (license-openapi.md §E.2).
const QueryOrderPath = "/api/mkp-openapi-public/global/v1/order/query"

// QueryOrder fetches an order (saas-v2.md §7.1). Both IDs are sent; an
// empty orderLineID is left out. The order is returned as KooGallery sent
// it, all lines included.
//
// A success code without orderInfo is treated as a retryable error: the
// caller needs the order, and an answer without one says nothing final.
func (c *Client) QueryOrder(ctx context.Context, orderID, orderLineID string) (*protocol.OrderInfo, error) {
	if orderID == "" {
		return nil, errors.New("openapi: query order: orderId is required")
	}
	query := []param{{"orderId", orderID}}
	if orderLineID != "" {
		query = append(query, param{"orderLineId", orderLineID})
	}
	a, err := c.send(ctx, http.MethodGet, QueryOrderPath, query, nil)
	if err != nil {
		return nil, fmt.Errorf("openapi: query order %s: %w", orderID, err)
	}
	resp, err := protocol.DecodeQueryOrderResponse(a.body)
	if err != nil || resp.Code() == "" {
		return nil, fmt.Errorf("openapi: query order %s: %w", orderID,
			answerError(a.status, "", "undecodable answer: "+snippet(a.body)))
	}
	if a.status/100 != 2 || !resp.Success() {
		return nil, fmt.Errorf("openapi: query order %s: %w", orderID, answerError(a.status, resp.Code(), resp.Msg()))
	}
	if resp.OrderInfo == nil {
		return nil, fmt.Errorf("openapi: query order %s: %w: %w", orderID, ErrUnavailable,
			&Error{HTTPStatus: a.status, Code: resp.Code(), Message: "success without orderInfo"})
	}
	return resp.OrderInfo, nil
}
