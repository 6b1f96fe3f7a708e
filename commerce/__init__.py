"""Commerce: red packets, lotteries, flash sales, orders and payment."""
