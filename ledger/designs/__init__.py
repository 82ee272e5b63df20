"""Design IP: registration and priority, certificates, licences and encrypted sharing."""
