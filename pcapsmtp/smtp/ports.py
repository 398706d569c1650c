"""The ports that carry SMTP: the one place they are written.

25 is relay (RFC 5321), 587 submission (RFC 6409), both in clear text until STARTTLS;
465 is submission with implicit TLS (RFC 8314). The TCP layer is handed them by its caller
(they tell the client of a flow whose handshake was not captured); other ports carry SMTP
when ``--port`` names them or when their first bytes show an SMTP dialogue.
"""

SMTP_PORTS = (25, 465, 587)
