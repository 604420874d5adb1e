from pipectl.cli.app import main

main()
