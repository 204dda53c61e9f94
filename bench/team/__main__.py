from bench.team.run import main

main()
