"""The portal as a whole, above every app: the home page that gathers from each of them, the demo
organisation, the development stack and the load test. Nothing below imports it."""
