package verify

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// payload is the claims set as authd writes it (RFC 9068, RFC 7519).
type payload struct {
	Iss      string   `json:"iss"`
	Sub      string   `json:"sub"`
	Aud      audience `json:"aud"`
	Exp      float64  `json:"exp"`
	Iat      float64  `json:"iat"`
	Nbf      float64  `json:"nbf"`
	Jti      string   `json:"jti"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope"`
	Scp      []string `json:"scp"`
	Roles    []string `json:"roles"`
	Username string   `json:"preferred_username"`
	Cnf      *struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// audience reads aud as a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// parseClaims reads the verified payload b of a token.
func parseClaims(b []byte) (*Claims, error) {
	var p payload
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object of the expected types", ErrInvalid)
	}
	if p.Sub == "" {
		return nil, fmt.Errorf("%w: no sub", ErrInvalid)
	}
	c := &Claims{
		Issuer:   p.Iss,
		Subject:  p.Sub,
		Audience: p.Aud,
		ID:       p.Jti,
		ClientID: p.ClientID,
		Username: p.Username,
		Scopes:   p.Scp,
		Roles:    p.Roles,
		raw:      b,
	}
	if p.Cnf != nil {
		c.bound = true
		c.Confirmation.JKT = p.Cnf.JKT
	}
	if p.Scope != "" {
		c.Scopes = strings.Fields(p.Scope)
	}
	var err error
	if c.ExpiresAt, err = numericDate(p.Exp, "exp", true); err != nil {
		return nil, err
	}
	if c.IssuedAt, err = numericDate(p.Iat, "iat", true); err != nil {
		return nil, err
	}
	if c.NotBefore, err = numericDate(p.Nbf, "nbf", false); err != nil {
		return nil, err
	}
	return c, nil
}

// numericDate converts a JWT NumericDate; zero means absent.
func numericDate(f float64, name string, required bool) (time.Time, error) {
	if f == 0 {
		if required {
			return time.Time{}, fmt.Errorf("%w: no %s", ErrInvalid, name)
		}
		return time.Time{}, nil
	}
	// Past year 9999 (or before 1970) is not a date authd writes.
	if f < 0 || f > 253402300799 {
		return time.Time{}, fmt.Errorf("%w: %s out of range", ErrInvalid, name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}
