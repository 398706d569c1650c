from pcapsmtp.cli import main

main()
