"""Protocol fakes: small HTTP servers on 127.0.0.1 speaking a cloud service's wire format to its real SDK."""
