"""TLS as the SMTP layer sees it after STARTTLS or on port 465: the scanner that walks the
clear-text part of the handshake (``scanner``), the facts it hands on (``facts``), the
protocol's numbers and names (``names``), the bounds-checked reading of handshake fields
(``fields``) and the server's certificate (``certificates``)."""
