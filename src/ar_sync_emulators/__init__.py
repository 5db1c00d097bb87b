"""Local emulators of QuickBooks Online and Xero (HTTP on 127.0.0.1), an SMTP sink and the
end-to-end demo. Not runtime code: tests and the demo use it, the Lambda bundle leaves it out."""
