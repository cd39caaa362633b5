from subnet.cli import main

main()
