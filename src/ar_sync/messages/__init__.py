"""What a customer reads: one message per customer and day, its words, and the MIME
message; plus the ports a sender implements. Pure."""
