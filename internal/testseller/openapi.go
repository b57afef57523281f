package testseller

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// The Open API paths the seller calls (license-openapi.md §E.2, §C.7),
// written here rather than taken from koobridge's client or the mocked
// Open API, so that a mistake in either is not repeated.
const (
	queryOrderPath   = "/api/mkp-openapi-public/global/v1/order/query"
	uploadPathPrefix = "/api/mkp-openapi-public/global/v1/market-event/"
	uploadPathSuffix = "/file"
)

// Upload attempts: transport failures, 429 and 5xx answers are tried
// again, uploadAttempts times in all, uploadBackoff apart and doubling;
// any other answer ends them.
const (
	uploadAttempts = 5
	uploadBackoff  = 50 * time.Millisecond
	openAPITimeout = 10 * time.Second
)

// openAPI is where the seller calls KooGallery's Open API.
type openAPI struct {
	base, ak, sk string
	client       *http.Client
}

// WithOpenAPI sets the Open API the seller calls for online license: base
// is KooGallery's Open API base URL (in tests the mocked one, such as the
// conformance suite's listener), ak and sk the credentials it signs with
// (APIG, license-openapi.md §E.3). Without it getLicenseAsync answers
// 000005. Call it before the seller serves; it returns s.
func (s *Seller) WithOpenAPI(base, ak, sk string) *Seller {
	s.openAPI = openAPI{base: strings.TrimRight(base, "/"), ak: ak, sk: sk, client: &http.Client{Timeout: openAPITimeout}}
	return s
}

// do sends an APIG-signed request to the Open API and returns the HTTP
// status and the body.
func (o openAPI) do(ctx context.Context, method, path, rawQuery, contentType string, body []byte) (int, []byte, error) {
	u := o.base + path
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	// The real body hash rather than UNSIGNED-PAYLOAD for multipart:
	// which one the gateway takes is UNCONFIRMED (§C.7); this one it must.
	sum := sha256.Sum256(body)
	req.Header.Set("X-Sdk-Content-Sha256", hex.EncodeToString(sum[:]))
	if err := (sign.APIGSigner{AK: o.ak, SK: o.sk}).Sign(req, body, time.Now()); err != nil {
		return 0, nil, err
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// chargingMode asks Query Order for the charging mode of an instance's
// order line.
func (s *Seller) chargingMode(ctx context.Context, line orderLine) (string, error) {
	if s.openAPI.base == "" {
		return "", errors.New("no Open API configured")
	}
	q := url.Values{"orderId": {line.orderID}, "orderLineId": {line.orderLineID}}
	status, body, err := s.openAPI.do(ctx, http.MethodGet, queryOrderPath, q.Encode(), "", nil)
	if err != nil {
		return "", fmt.Errorf("query order %s: %w", line.orderID, err)
	}
	r, err := protocol.DecodeQueryOrderResponse(body)
	switch {
	case err != nil:
		return "", fmt.Errorf("query order %s: HTTP %d: %w", line.orderID, status, err)
	case !r.Success() || r.OrderInfo == nil:
		return "", fmt.Errorf("query order %s: HTTP %d, %s %s", line.orderID, status, r.Code(), r.Msg())
	}
	l, ok := r.OrderInfo.Line(line.orderLineID)
	if !ok {
		return "", fmt.Errorf("query order %s: no order line %s", line.orderID, line.orderLineID)
	}
	return string(l.ChargingMode), nil
}

// upload uploads the license of an event as a FILE (license-openapi.md
// §C.7): multipart/form-data with the isvUpdateFileReq JSON (its sha256
// the hex SHA-256 of the file, unless OnlineLicenseWrongSHA256) and the
// file. Attempts end with the first answer that is not a transport
// failure, a 429 or a 5xx.
func (s *Seller) upload(ctx context.Context, eventID string, license []byte) {
	ctx, cancel := context.WithTimeout(ctx, 2*openAPITimeout)
	defer cancel()
	sum := sha256.Sum256(license)
	if s.faults.OnlineLicenseWrongSHA256 {
		sum = sha256.Sum256([]byte("not the license"))
	}
	req, err := json.Marshal(protocol.IsvUpdateFileReq{Type: protocol.UploadTypeFile, FileName: "license.lic", SHA256: hex.EncodeToString(sum[:])})
	if err != nil {
		return // a struct of strings: cannot fail
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("isvUpdateFileReq", string(req)); err != nil {
		return
	}
	fw, err := mw.CreateFormFile("file", "license.lic")
	if err != nil {
		return
	}
	if _, err := fw.Write(license); err != nil {
		return
	}
	if err := mw.Close(); err != nil {
		return
	}
	wait := uploadBackoff
	for range uploadAttempts {
		status, _, err := s.openAPI.do(ctx, http.MethodPost, uploadPathPrefix+url.PathEscape(eventID)+uploadPathSuffix, "", mw.FormDataContentType(), buf.Bytes())
		if err == nil && status != http.StatusTooManyRequests && status < http.StatusInternalServerError {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		wait *= 2
	}
}
