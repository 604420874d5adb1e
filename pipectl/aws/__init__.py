"""The AWS seam: one thin module per service. Nothing above this layer inspects ClientError."""
