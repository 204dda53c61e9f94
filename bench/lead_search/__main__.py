from bench.lead_search.run import main

main()
