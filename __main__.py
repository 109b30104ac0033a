from bpfcap.cli.main import main

main()
