module differential-go-backend

go 1.19
